"""A Celery round trip inside a web request: HTTP -> gateway -> Redis -> worker -> back.

Compares, in one run and on the same Redis, each web app under gunicorn with two processes of
32 threads: a bare Flask route returning a constant (the ceiling); the real gateway's
``GET /readyz/directory`` (``shared.rpc`` to the real directory worker, ``WORKER_POOL=solo``);
the same call from a bare Flask route; and stock Celery RPC (``send_task(...).get()``,
default settings, Redis
result backend, a worker with Celery's defaults). Every process logs at WARNING. Latency at a
fixed rate of 150 requests/s (open loop); throughput at 16 connections, the median of three
interleaved rounds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import redis
import requests

from benchmarks.loadgen import Result, closed_loop, open_loop
from benchmarks.processes import (
    free_port,
    running_processes,
    serve,
    serve_stock_celery,
    start_redis,
    wait_http_ok,
)
from benchmarks.report import Row

CONNECTIONS = 16
FIXED_RATE = 150
ROUNDS = 3


@dataclass
class Measured:
    name: str
    closed: Result
    fixed: Result
    redis_commands_per_call: float


def _commands_per_call(redis_url: str, url: str, calls: int = 300) -> float:
    client = redis.Redis.from_url(redis_url)
    session = requests.Session()
    before = client.info("stats")["total_commands_processed"]
    for _ in range(calls):
        session.get(url, timeout=5).raise_for_status()
    after = client.info("stats")["total_commands_processed"]
    # The first INFO counts itself in `after`.
    return (after - before - 1) / calls


def measure(seconds: float = 10.0) -> list[Measured]:
    with running_processes() as processes, tempfile.TemporaryDirectory() as data_dir:
        redis_url = start_redis(processes)
        env = dict(
            os.environ,
            BENCH_REDIS_URL=redis_url,
            REDIS_URL=redis_url,
            DATA_DIR=data_dir,
            LOG_LEVEL="warning",
            PYTHONUNBUFFERED="1",
        )
        me = [sys.executable, "-m", "sistercities"]
        subprocess.run([*me, "migrate"], env=env, check=True, capture_output=True)
        # Tuned for a service of short tasks: no pool, one task at a time per process.
        processes.start("directory", [*me, "worker", "directory"], dict(env, WORKER_POOL="solo"))
        gateway_port = free_port()
        processes.start(
            "gateway", [*me, "gateway"], dict(env, PORT=str(gateway_port), GATEWAY_PROCESSES="2")
        )
        urls = {
            "bare Flask route (ceiling)": serve(
                processes, "bare", "benchmarks.rpc_apps:bare_app()", env
            )
            + "/ping",
            "gateway GET /readyz/directory": f"http://127.0.0.1:{gateway_port}/readyz/directory",
            "bare Flask route + shared.rpc": serve(
                processes, "lean", "benchmarks.rpc_apps:lean_app()", env
            )
            + "/ping",
            "stock Celery send_task().get()": serve_stock_celery(processes, env) + "/ping",
        }
        for name, url in urls.items():
            wait_http_ok(url, name)
        fixed = {}
        for name, url in urls.items():
            open_loop(url, FIXED_RATE, 2.0)  # warm-up
            fixed[name] = open_loop(url, FIXED_RATE, seconds)
        # Throughput in interleaved rounds, so a noisy moment of a shared machine hits every
        # path alike; the median round counts.
        rounds: dict[str, list[Result]] = {name: [] for name in urls}
        for _ in range(ROUNDS):
            for name, url in urls.items():
                rounds[name].append(closed_loop(url, CONNECTIONS, seconds / 2))
        return [
            Measured(
                name,
                median_round(rounds[name]),
                fixed[name],
                _commands_per_call(redis_url, url),
            )
            for name, url in urls.items()
        ]


def median_round(results: list[Result]) -> Result:
    return sorted(results, key=lambda result: result.rps)[len(results) // 2]


def as_rows(results: list[Measured]) -> list[Row]:
    """The same results as rows of the one benchmark table."""
    bare = results[0].closed.rps
    stock = results[-1].closed.rps
    return [
        Row(
            f"{row.name}: {CONNECTIONS} connections / steady {FIXED_RATE} req/s",
            f"{row.closed.rps:,.0f} req/s, p50 {row.closed.p50_ms:.2f} ms, "
            f"p99 {row.closed.p99_ms:.2f} ms / p99 {row.fixed.p99_ms:.2f} ms, "
            f"{row.redis_commands_per_call:.0f} Redis commands a call",
            f"stock Celery {stock:,.0f} req/s, bare Flask {bare:,.0f} req/s",
            f"{row.closed.rps / stock:.2f}x stock, {row.closed.rps / bare:.0%} of bare",
        )
        for row in results
    ]
