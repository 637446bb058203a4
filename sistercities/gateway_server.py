"""Serving the gateway with gunicorn: one process per core (a Python process runs on one core
at a time), threads within each (requests mostly wait on Redis)."""

from __future__ import annotations

import os
import shutil

from gunicorn.app.base import BaseApplication

from services.gateway.config import GatewaySettings

PROMETHEUS_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class GatewayServer(BaseApplication):
    def __init__(self, settings: GatewaySettings):
        self.settings = settings
        if settings.gateway_processes > 1:
            self._prepare_shared_metrics()
        super().__init__()

    def _prepare_shared_metrics(self) -> None:
        # prometheus_client reads this variable when first imported, so it is set here, in
        # the master, before any worker process imports the app.
        directory = self.settings.metrics_dir
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        os.environ[PROMETHEUS_MULTIPROC_ENV] = str(directory)

    def load_config(self) -> None:
        options = {
            "bind": f"{self.settings.host}:{self.settings.port}",
            "workers": self.settings.gateway_processes,
            "worker_class": "gthread",
            "threads": self.settings.gateway_threads,
            "graceful_timeout": 5,
            "timeout": 30,
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": "sistercities-gateway",
            "child_exit": _forget_dead_worker_metrics,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self):
        from services.gateway.app import create_app

        return create_app(self.settings, shared_metrics=self.settings.gateway_processes > 1)


def _forget_dead_worker_metrics(_server, worker) -> None:
    if PROMETHEUS_MULTIPROC_ENV in os.environ:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
