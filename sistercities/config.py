"""The launcher's settings: what `sistercities run` needs to start the whole system."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass

from shared.settings import SMTP_SCHEMES, CommonSettings, EnvReader


@dataclass(frozen=True)
class LauncherSettings(CommonSettings):
    host: str
    port: int
    redis_given: bool
    smtp_url: str | None
    mailcatcher_port: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LauncherSettings:
        env = EnvReader(environ)
        common = CommonSettings.read(env)
        settings = cls(
            host=env.str("HOST", "127.0.0.1"),
            port=env.int("PORT", 8000, 1, 65535),
            redis_given=env.str("REDIS_URL") is not None,
            smtp_url=env.url("SMTP_URL", None, SMTP_SCHEMES),
            mailcatcher_port=env.int("MAILCATCHER_PORT", 1025, 1, 65535),
            **common,
        )
        env.done()
        return settings


class _RecordingEnviron(dict):
    """An empty environment that remembers which variables were asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)


def known_variables() -> set[str]:
    """Every environment variable some process of the system reads."""
    from services.gateway.config import GatewaySettings
    from shared.routing import SERVICES

    environ = _RecordingEnviron()
    LauncherSettings.from_env(environ)
    GatewaySettings.from_env(environ)
    for service in SERVICES:
        importlib.import_module(f"services.{service}.config").load_settings(environ)
    importlib.import_module("services.notifier.config").load_mailbox_settings(environ)
    return environ.asked
