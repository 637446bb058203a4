"""Serving the gateway with gunicorn (threaded workers: requests mostly wait on Redis)."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings


class GatewayServer(BaseApplication):
    def __init__(self, settings: GatewaySettings, processes: int):
        self.settings = settings
        self.processes = processes
        super().__init__()

    def load_config(self) -> None:
        options = {
            "bind": f"{self.settings.host}:{self.settings.port}",
            "workers": self.processes,
            "worker_class": "gthread",
            "threads": self.settings.gateway_threads,
            "graceful_timeout": 5,
            "timeout": 30,
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": "sistercities-gateway",
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self):
        return create_app(self.settings)
