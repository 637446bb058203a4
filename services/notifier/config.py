"""The notifier's settings: the common ones plus NOTIFIER_DATABASE_URL."""

from __future__ import annotations

from collections.abc import Mapping

from shared.settings import ServiceSettings


def load_settings(environ: Mapping[str, str] | None = None) -> ServiceSettings:
    return ServiceSettings.from_env("notifier", environ)
