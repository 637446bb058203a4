"""Settings read once from the environment into frozen objects, validated with clear messages.

Nothing else in the project reads ``os.environ``: each process builds its settings at start-up
from the mapping it is given and passes them on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from shared.keys import MIN_SECRET_KEY_CHARS
from shared.redis_connection import DEFAULT_SENTINEL_MASTER, is_sentinel_url, parse_sentinel_url

T = TypeVar("T")

REDIS_SCHEMES = ("redis", "rediss", "unix", "sentinel")
# A Sentinel master's name as sentinel.conf spells it (`sentinel monitor NAME host port quorum`).
SENTINEL_MASTER_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
SMTP_SCHEMES = ("smtp", "smtps", "smtp+starttls")
ENVIRONMENTS = ("development", "production", "test")


class ConfigError(Exception):
    """The environment does not describe a runnable process; the message lists every problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            "invalid configuration:\n" + "\n".join(f"  - {problem}" for problem in problems)
        )


class EnvReader:
    """Typed access to one environment mapping that collects problems instead of failing early,
    so a user sees every misconfigured variable in one message."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self.environ = os.environ if environ is None else environ
        self.problems: list[str] = []

    def _raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def _parse(self, name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except (ValueError, ArgumentError):
            self.problems.append(f"{name}={raw!r} is not {expected}")
            return default

    def str(self, name: str, default: Any = None) -> Any:
        raw = self._raw(name)
        return default if raw is None else raw

    def int(self, name: str, default: int, minimum: int, maximum: int) -> int:
        def parse(raw: str) -> int:
            value = int(raw)
            if not minimum <= value <= maximum:
                raise ValueError
            return value

        return self._parse(name, default, parse, f"an integer from {minimum} to {maximum}")

    def float(self, name: str, default: float, minimum: float, maximum: float) -> float:
        def parse(raw: str) -> float:
            value = float(raw)
            if not minimum <= value <= maximum:
                raise ValueError
            return value

        return self._parse(name, default, parse, f"a number from {minimum} to {maximum}")

    def bool(self, name: str, default: bool) -> bool:
        truthy, falsy = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}

        def parse(raw: str) -> bool:
            if raw.lower() in truthy:
                return True
            if raw.lower() in falsy:
                return False
            raise ValueError

        return self._parse(name, default, parse, "a boolean (1/0, true/false, yes/no)")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        def parse(raw: str) -> str:
            if raw.lower() not in choices:
                raise ValueError
            return raw.lower()

        return self._parse(name, default, parse, "one of " + ", ".join(choices))

    def url(self, name: str, default: str | None, schemes: tuple[str, ...]) -> str | None:
        def parse(raw: str) -> str:
            parts = urlsplit(raw)
            if parts.scheme not in schemes or not (parts.netloc or parts.path):
                raise ValueError
            return raw

        return self._parse(
            name,
            default,
            parse,
            "a URL starting with " + " or ".join(f"{scheme}://" for scheme in schemes),
        )

    def redis_url(self, name: str, default: str) -> str:
        """One Redis server, or every sentinel of a Sentinel setup (``shared.redis_connection``)."""
        raw = self._raw(name)
        if raw is not None and is_sentinel_url(raw):
            try:
                parse_sentinel_url(raw)
            except ValueError as error:
                self.problems.append(f"{name}: {error}")
                return default
            return raw
        if raw is not None and ";" in raw:
            self.problems.append(
                f"{name} lists several addresses: only a sentinel:// URL can "
                "(sentinel://host1:26379;sentinel://host2:26379;...)"
            )
            return default
        return self.url(name, default, REDIS_SCHEMES)

    def database_url(self, name: str, default: str) -> str:
        def parse(raw: str) -> str:
            url = make_url(raw)
            if url.get_backend_name() not in ("postgresql", "sqlite"):
                raise ValueError
            return raw

        return self._parse(name, default, parse, "a postgresql:// or sqlite:/// database URL")

    def require(self, name: str, value: Any, why: str) -> None:
        if not value:
            self.problems.append(f"{name} must be set {why}")

    def secret_key(self, environment: str) -> str | None:
        """SECRET_KEY, which production requires, long enough not to be guessed."""
        key = self.str("SECRET_KEY")
        if environment != "production":
            return key
        how = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))' makes one"
        if not key:
            self.problems.append(
                f"SECRET_KEY must be set in production (a long random string: {how})"
            )
        elif len(key) < MIN_SECRET_KEY_CHARS:
            self.problems.append(
                f"SECRET_KEY must be at least {MIN_SECRET_KEY_CHARS} characters in production "
                f"(it has {len(key)}; {how})"
            )
        return key

    def done(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


@dataclass(frozen=True)
class CommonSettings:
    """What every process needs: where Redis is, where local files live, how to log."""

    environment: str
    data_dir: Path
    redis_url: str
    redis_sentinel_master: str
    log_level: str
    log_format: str
    service_timeout: float
    task_visibility_timeout: int
    worker_pool: str
    worker_concurrency: int

    @staticmethod
    def read(env: EnvReader) -> dict[str, Any]:
        data_dir = Path(env.str("DATA_DIR", "var")).expanduser().resolve()
        environment = env.choice("ENVIRONMENT", "development", ENVIRONMENTS)
        values = {
            "environment": environment,
            "data_dir": data_dir,
            "redis_url": env.redis_url("REDIS_URL", embedded_redis_url(data_dir)),
            "redis_sentinel_master": env.str("REDIS_SENTINEL_MASTER", DEFAULT_SENTINEL_MASTER),
            "log_level": env.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
            "log_format": env.choice(
                "LOG_FORMAT",
                "json" if environment == "production" else "console",
                ("console", "json"),
            ),
            "service_timeout": env.float("SERVICE_TIMEOUT", 2.0, 0.05, 60.0),
            "task_visibility_timeout": env.int("TASK_VISIBILITY_TIMEOUT", 1800, 5, 86400),
            # Measured (benchmarks/bench_rpc.py): more threads than cores only add GIL
            # contention; solo (no pool) is fastest for a worker of short tasks.
            "worker_pool": env.choice("WORKER_POOL", "threads", ("threads", "solo", "prefork")),
            "worker_concurrency": env.int("WORKER_CONCURRENCY", 2, 1, 256),
        }
        if environment == "production" and not redis_url_has_password(values["redis_url"]):
            # Redis holds the queues, the replies and the cached pages: whoever can write to
            # it sends tasks as any service would.
            env.problems.append(
                "REDIS_URL must carry a password in production "
                "(redis://:PASSWORD@host or rediss://USER:PASSWORD@host)"
            )
        if not SENTINEL_MASTER_NAME.fullmatch(values["redis_sentinel_master"]):
            env.problems.append(
                "REDIS_SENTINEL_MASTER must be the master's name as the sentinels know it: "
                "letters, digits, '.', '_' or '-', at most 100"
            )
        return values


def redis_url_has_password(url: str) -> bool:
    """A Unix socket is guarded by its file's permissions; a server on the network, by a
    password (of the default user, or of an ACL user)."""
    if url.startswith("unix://"):
        return True
    if is_sentinel_url(url):
        return parse_sentinel_url(url).password is not None
    return bool(urlsplit(url).password)


def embedded_redis_url(data_dir: Path) -> str:
    """Where `sistercities run` puts its embedded Redis when no REDIS_URL is given."""
    return f"unix://{data_dir / 'redis.sock'}"


def sqlite_url(data_dir: Path, service: str) -> str:
    return f"sqlite:///{data_dir / f'{service}.db'}"


@dataclass(frozen=True)
class ServiceSettings(CommonSettings):
    """A service process: the common settings plus the one database it owns."""

    service: str
    database_url: str

    @classmethod
    def from_env(cls, service: str, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        env = EnvReader(environ)
        common = CommonSettings.read(env)
        database_url = env.database_url(
            f"{service.upper()}_DATABASE_URL", sqlite_url(common["data_dir"], service)
        )
        values = {**common, **cls.read_own(env, common)}
        env.done()
        return cls(service=service, database_url=database_url, **values)

    @classmethod
    def read_own(cls, env: EnvReader, common: dict[str, Any]) -> dict[str, Any]:
        """A service's own settings (and overrides of common ones); subclasses add theirs."""
        return {}
