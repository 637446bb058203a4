"""The blog's settings: the common ones, BLOG_DATABASE_URL, and how it may fetch feeds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.settings import EnvReader, ServiceSettings


@dataclass(frozen=True)
class BlogSettings(ServiceSettings):
    # Feeds on private, loopback and link-local addresses are refused (a feed URL is text a
    # stranger may have typed); tests and intranet deployments turn this on.
    allow_private_feeds: bool = False

    @classmethod
    def read_own(cls, env: EnvReader, common: dict[str, Any]) -> dict[str, Any]:
        own: dict[str, Any] = {"allow_private_feeds": env.bool("BLOG_ALLOW_PRIVATE_FEEDS", False)}
        if env.str("WORKER_CONCURRENCY") is None:
            # Fetching is mostly waiting on other hosts: more threads than cores pay here.
            own["worker_concurrency"] = 8
        return own


def load_settings(environ: Mapping[str, str] | None = None) -> BlogSettings:
    return BlogSettings.from_env("blog", environ)
