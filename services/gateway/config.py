"""The gateway's settings: the common ones plus what the web process needs."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.gateway.web.rate_limits import parse_rules
from shared.keys import SESSIONS, derive_key
from shared.settings import CommonSettings, EnvReader

# Long enough for any real form or CSV upload the API accepts, small enough to refuse abuse.
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class GatewaySettings(CommonSettings):
    host: str
    port: int
    public_base_url: str
    secret_key: str
    admin_token: str | None
    max_body_bytes: int
    gateway_processes: int
    cache_seconds: int
    gateway_threads: int
    donate_url: str | None
    trusted_proxies: int
    search_rate_limit: str
    subscribe_rate_limit: str
    sign_in_rate_limit: str
    metrics_token: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GatewaySettings:
        env = EnvReader(environ)
        common = CommonSettings.read(env)
        port = env.int("PORT", 8000, 1, 65535)
        secret_key = env.secret_key(common["environment"])
        admin_token = env.str("ADMIN_TOKEN")
        metrics_token = env.str("METRICS_TOKEN")
        if admin_token is not None and len(admin_token) < 16:
            env.problems.append("ADMIN_TOKEN must be at least 16 characters")
        if metrics_token is not None and len(metrics_token) < 16:
            env.problems.append("METRICS_TOKEN must be at least 16 characters")
        settings = cls(
            host=env.str("HOST", "127.0.0.1"),
            port=port,
            public_base_url=env.url(
                "PUBLIC_BASE_URL", f"http://127.0.0.1:{port}", ("http", "https")
            ).rstrip("/"),
            # Development without a key still works; sessions just do not survive a restart.
            secret_key=secret_key or secrets.token_urlsafe(32),
            admin_token=admin_token,
            # What Prometheus sends (Authorization: Bearer); unset, /metrics is off.
            metrics_token=metrics_token,
            max_body_bytes=env.int("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1024, 100 * 2**20),
            # One process per core: a Python process serves requests on one core at a time.
            gateway_processes=env.int("GATEWAY_PROCESSES", 2, 1, 64),
            gateway_threads=env.int("GATEWAY_THREADS", 32, 1, 512),
            cache_seconds=env.int("CACHE_SECONDS", 300, 0, 86400),
            donate_url=env.url("DONATE_URL", None, ("http", "https")),
            # Proxies in front of the gateway that set X-Forwarded-For: the client address
            # (for rate limits and logs) is then the one they saw.
            trusted_proxies=env.int("TRUSTED_PROXIES", 0, 0, 5),
            # Per client address; the notation of the limits package ("10/second;300/minute").
            search_rate_limit=env.str("SEARCH_RATE_LIMIT", "20/second;600/minute"),
            subscribe_rate_limit=env.str("SUBSCRIBE_RATE_LIMIT", "5/minute;30/hour"),
            # Wrong admin tokens (sign-in form and admin API together) per client address.
            sign_in_rate_limit=env.str("SIGN_IN_RATE_LIMIT", "10/minute;100/hour"),
            **common,
        )
        for name in ("SEARCH_RATE_LIMIT", "SUBSCRIBE_RATE_LIMIT", "SIGN_IN_RATE_LIMIT"):
            try:
                parse_rules(env.str(name) or "1/second")
            except ValueError:
                env.problems.append(f'{name} must look like "10/second;300/minute"')
        env.done()
        return settings

    @property
    def session_key(self) -> str:
        """Flask's key (sessions, CSRF tokens): SECRET_KEY's key for sessions, so nothing
        the gateway signs can pass for a mail token, nor the other way round."""
        return derive_key(self.secret_key, SESSIONS)

    @property
    def metrics_dir(self) -> Path:
        """Where gunicorn's processes pool their Prometheus metrics."""
        return self.data_dir / "metrics"
