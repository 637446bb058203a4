"""The baseline's worker: Celery with its defaults (prefork pool, Redis result backend).
Run as ``celery -A benchmarks.stock_worker worker``."""

from benchmarks.rpc_apps import stock_celery

app = stock_celery()
