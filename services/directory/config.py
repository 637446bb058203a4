"""The directory's settings: the common ones, DIRECTORY_DATABASE_URL, and the organisation's
home country (City Search ranks its small towns first among namesakes)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.directory.geography import countries
from shared.settings import EnvReader, ServiceSettings

DEFAULT_HOME_COUNTRY = "US"


@dataclass(frozen=True)
class DirectorySettings(ServiceSettings):
    # ISO code of the country most visitors search from, or None ("none"): its towns of
    # under 15,000 people come before namesakes abroad of similar size.
    home_country: str | None = DEFAULT_HOME_COUNTRY

    @classmethod
    def read_own(cls, env: EnvReader, common: dict[str, Any]) -> dict[str, Any]:
        raw = env.str("DIRECTORY_HOME_COUNTRY", DEFAULT_HOME_COUNTRY).upper()
        if raw == "NONE":
            return {"home_country": None}
        if raw not in countries():
            env.problems.append(
                f"DIRECTORY_HOME_COUNTRY={raw!r} is not an ISO 3166-1 code (US, DE) or 'none'"
            )
        return {"home_country": raw}


def load_settings(environ: Mapping[str, str] | None = None) -> DirectorySettings:
    return DirectorySettings.from_env("directory", environ)
