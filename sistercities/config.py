"""The launcher's settings: what `sistercities run` needs to start the whole system."""

from __future__ import annotations

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
    gateway_processes: int
    gateway_threads: int

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
            gateway_processes=env.int("GATEWAY_PROCESSES", 1, 1, 64),
            gateway_threads=env.int("GATEWAY_THREADS", 32, 1, 512),
            **common,
        )
        env.done()
        return settings
