"""Story identity: the key that makes one story one post, whatever link form it arrives in.

Medium's post ids are global, so a story in a publication's feed and in its author's feed is
one post; such a key is given only to what really came from Medium (medium.com, its
subdomains and the custom domains staff configure in ``MEDIUM_CUSTOM_DOMAINS``): a feed on
another host that writes ``<guid>https://medium.com/p/<id></guid>`` must not reach a Medium
story. Every other key holds only within its feed (``<guid>1</guid>`` is common).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from services.blog.links import canonical_link

MEDIUM_GUID = re.compile(r"^https?://medium\.com/p/([0-9a-f]{6,16})/?$", re.IGNORECASE)
# Medium post paths end in "-<hex id>" (10 to 12 hex digits, sometimes fewer).
MEDIUM_SLUG_ID = re.compile(r"-([0-9a-f]{8,16})$")
MEDIUM_KEY_PREFIX = "medium:"


def is_medium_host(host: str | None, custom_domains: Iterable[str] = ()) -> bool:
    host = (host or "").lower().rstrip(".")
    return host == "medium.com" or host.endswith(".medium.com") or host in custom_domains


def source_name(key: str, url: str) -> str:
    """Where readers find a story's original: "Medium" for Medium's stories (only they get
    Medium keys), else the host of its link ("example.org")."""
    if key.startswith(MEDIUM_KEY_PREFIX):
        return "Medium"
    return (urlsplit(url).hostname or "its website").removeprefix("www.")


def medium_post_id(guid: str | None, link: str | None) -> str | None:
    """Medium's own post id, from ``<guid>https://medium.com/p/<id></guid>`` or from the end of
    a medium.com link's path."""
    if guid and (match := MEDIUM_GUID.match(guid.strip())):
        return match.group(1).lower()
    parts = urlsplit(link or "")
    if is_medium_host(parts.hostname) and (match := MEDIUM_SLUG_ID.search(parts.path.rstrip("/"))):
        return match.group(1).lower()
    return None


def post_key(
    feed_id: int, guid: str | None, link: str | None, fallback_text: str, *, from_medium: bool
) -> str:
    """``from_medium``: the feed's bytes came from a Medium host (see the module's docstring)."""
    if from_medium and (medium_id := medium_post_id(guid, link)):
        return MEDIUM_KEY_PREFIX + medium_id
    if guid and guid.strip():
        return f"{feed_id}:guid:{_bounded(guid.strip())}"
    if canonical := canonical_link(link):
        parts = urlsplit(canonical)
        # The same post under www. or another scheme is the same post.
        host = (parts.hostname or "").removeprefix("www.")
        return f"{feed_id}:link:{_bounded(host + parts.path + '?' + parts.query)}"
    digest = hashlib.sha256(fallback_text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{feed_id}:hash:{digest}"


def _bounded(text: str) -> str:
    # Keys live in an indexed column: a hostile 100 KB guid becomes a hash, not an error.
    if len(text) <= 300:
        return text
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
