"""The blog's settings: the common ones plus BLOG_DATABASE_URL."""

from __future__ import annotations

from collections.abc import Mapping

from shared.settings import ServiceSettings


def load_settings(environ: Mapping[str, str] | None = None) -> ServiceSettings:
    return ServiceSettings.from_env("blog", environ)
