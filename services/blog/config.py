"""The blog's settings: the common ones, BLOG_DATABASE_URL, and how it may fetch feeds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from services.blog.links import is_host
from shared.settings import EnvReader, ServiceSettings

MAX_BASE_URL_CHARS = 300


@dataclass(frozen=True)
class BlogSettings(ServiceSettings):
    # Feeds on private, loopback and link-local addresses are refused (a feed URL is text a
    # stranger may have typed); tests and intranet deployments turn this on.
    allow_private_feeds: bool = False
    # Host names of Medium publications on a domain of their own: their feeds' stories get
    # Medium's global post keys (see post_keys.py), as medium.com's do.
    medium_custom_domains: frozenset[str] = frozenset()
    # WebSub (websub.py): the gateway's address as hubs reach it, the callbacks' base. Unset,
    # the blog subscribes to no hub and polls every feed.
    websub_base_url: str | None = None
    # How often a feed is still polled while its hub pushes its stories: the fallback for a
    # push that never came.
    websub_poll_interval: int = 6 * 3600

    @classmethod
    def read_own(cls, env: EnvReader, common: dict[str, Any]) -> dict[str, Any]:
        own: dict[str, Any] = {
            "allow_private_feeds": env.bool("BLOG_ALLOW_PRIVATE_FEEDS", False),
            "medium_custom_domains": _host_names(env, "MEDIUM_CUSTOM_DOMAINS"),
            "websub_base_url": _base_url(env, "WEBSUB_BASE_URL"),
            "websub_poll_interval": env.int("WEBSUB_POLL_INTERVAL", 6 * 3600, 900, 7 * 86400),
        }
        if env.str("WORKER_CONCURRENCY") is None:
            # Fetching is mostly waiting on other hosts: more threads than cores pay here.
            own["worker_concurrency"] = 8
        return own


def _host_names(env: EnvReader, name: str) -> frozenset[str]:
    hosts = frozenset(
        host.strip().lower().rstrip(".")
        for host in (env.str(name) or "").split(",")
        if host.strip()
    )
    if not all(is_host(host) for host in hosts):
        env.problems.append(f"{name} must be host names separated by commas (blog.example.org)")
    return hosts


def _base_url(env: EnvReader, name: str) -> str | None:
    url = env.url(name, None, ("http", "https"))
    if url is None:
        return None
    parts = urlsplit(url)
    if not parts.hostname or parts.query or parts.fragment:
        env.problems.append(f"{name} must be an address like https://example.org (no query)")
    # A callback's path and token follow it; a hub may refuse a long callback.
    if len(url) > MAX_BASE_URL_CHARS:
        env.problems.append(f"{name} is longer than {MAX_BASE_URL_CHARS} characters")
    return url.rstrip("/")


def load_settings(environ: Mapping[str, str] | None = None) -> BlogSettings:
    return BlogSettings.from_env("blog", environ)
