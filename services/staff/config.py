"""The staff service's settings: its database, the site's address (sign-in links in mail),
how long sessions and links last, and how often sign-in may be tried."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from limits import parse_many

from shared.settings import EnvReader, ServiceSettings

DEFAULT_ADDRESS_LIMIT = "5/minute;20/hour"
DEFAULT_CLIENT_LIMIT = "10/minute;100/hour"


@dataclass(frozen=True)
class StaffSettings(ServiceSettings):
    public_base_url: str = "http://127.0.0.1:8000"
    session_hours: int = 12
    link_minutes: int = 15
    # Sign-in attempts (links asked for, passwords tried) per address and per client address,
    # in the notation of the limits package.
    address_limit: str = DEFAULT_ADDRESS_LIMIT
    client_limit: str = DEFAULT_CLIENT_LIMIT

    @classmethod
    def read_own(cls, env: EnvReader, common: dict[str, Any]) -> dict[str, Any]:
        port = env.int("PORT", 8000, 1, 65535)
        values = {
            "public_base_url": env.url(
                "PUBLIC_BASE_URL", f"http://127.0.0.1:{port}", ("http", "https")
            ).rstrip("/"),
            "session_hours": env.int("STAFF_SESSION_HOURS", 12, 1, 720),
            "link_minutes": env.int("STAFF_LINK_MINUTES", 15, 1, 1440),
            "address_limit": env.str("STAFF_SIGN_IN_ADDRESS_LIMIT", DEFAULT_ADDRESS_LIMIT),
            "client_limit": env.str("STAFF_SIGN_IN_CLIENT_LIMIT", DEFAULT_CLIENT_LIMIT),
        }
        for name, key in (
            ("STAFF_SIGN_IN_ADDRESS_LIMIT", "address_limit"),
            ("STAFF_SIGN_IN_CLIENT_LIMIT", "client_limit"),
        ):
            try:
                parse_many(values[key])
            except ValueError:
                env.problems.append(f'{name} must look like "5/minute;20/hour"')
        return values


def load_settings(environ: Mapping[str, str] | None = None) -> StaffSettings:
    return StaffSettings.from_env("staff", environ)
