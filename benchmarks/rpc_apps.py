"""The web apps and the stock worker the round-trip benchmark compares, each served the same
way (gunicorn, one process, threads) so only the request path differs.

- ``bare``:  a Flask route returning a constant: the ceiling.
- ``lean``:  a Flask route calling ``directory.ping_service`` through ``shared.rpc`` (the
             gateway's path) on the real directory worker.
- ``stock``: a Flask route doing ``send_task(...).get()`` with Celery's defaults and the Redis
             result backend, answered by a worker with Celery's defaults.
"""

from __future__ import annotations

import os

import redis
from celery import Celery
from flask import Flask, jsonify

from shared.rpc import ServiceClient
from shared.settings import CommonSettings, EnvReader

STOCK_TASK = "bench.ping_service"


def _redis_url() -> str:
    return os.environ["BENCH_REDIS_URL"]


def bare_app() -> Flask:
    app = Flask("bare")

    @app.get("/ping")
    def ping():
        return jsonify(status="ok")

    return app


def lean_app() -> Flask:

    settings = CommonSettings(**CommonSettings.read(EnvReader({"REDIS_URL": _redis_url()})))
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10)
    services = ServiceClient(client, timeout=2.0)
    app = Flask("lean")

    @app.get("/ping")
    def ping():
        return jsonify(services.call("directory.ping_service"))

    return app


def stock_celery() -> Celery:
    app = Celery("bench-stock", broker=_redis_url(), backend=_redis_url())

    @app.task(name=STOCK_TASK)
    def ping_service():
        return {"service": "stock"}

    return app


def stock_app() -> Flask:
    celery = stock_celery()
    app = Flask("stock")

    @app.get("/ping")
    def ping():
        return jsonify(celery.send_task(STOCK_TASK).get(timeout=2.0))

    return app
