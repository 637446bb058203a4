"""Links as the blog keeps them: feed addresses staff type, canonical post links without
tracking queries, and the stable key that makes one story one post whatever link form or
feed it arrives through."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MAX_URL_CHARS = 2000
# Query parameters that only say where a click came from (Medium's ?source=rss-…, UTM, ads).
TRACKING_PARAMS = frozenset(
    {"source", "sk", "gi", "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "ref"}
)
MEDIUM_GUID = re.compile(r"^https?://medium\.com/p/([0-9a-f]{6,16})/?$", re.IGNORECASE)
# Medium post paths end in "-<hex id>" (10 to 12 hex digits, sometimes fewer).
MEDIUM_SLUG_ID = re.compile(r"-([0-9a-f]{8,16})$")
# One label of a host name (RFC 1123, and "_", which some real hosts have), once in ASCII.
HOST_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


class BadFeedUrl(ValueError):
    pass


def feed_url(text: str) -> str:
    """The address to fetch for what staff typed: a feed URL as given, or a Medium
    publication, user or subdomain page turned into its feed."""
    url = text.strip()
    if "://" not in url:
        url = "https://" + url
    if len(url) > MAX_URL_CHARS:
        raise BadFeedUrl(f"a feed address is at most {MAX_URL_CHARS} characters")
    if any(char.isspace() or unicodedata.category(char) == "Cc" for char in url):
        raise BadFeedUrl("a feed address has no spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError:  # a "[" that opens no IPv6 address
        raise BadFeedUrl("the feed address's host is not a host name or address") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadFeedUrl("a feed address starts with http:// or https:// and names a host")
    if not _is_host(parts.hostname):
        raise BadFeedUrl("the feed address's host is not a host name or address")
    if parts.username or parts.password:
        raise BadFeedUrl("a feed address must not carry a user name or password")
    try:
        port = parts.port
    except ValueError:
        raise BadFeedUrl("the feed address's port is not a number") from None
    host = parts.hostname.lower()
    path = parts.path.rstrip("/")
    bracketed = f"[{host}]" if ":" in host else host  # an IPv6 literal
    netloc = bracketed if port is None else f"{bracketed}:{port}"
    if host in ("medium.com", "www.medium.com"):
        # medium.com/<publication> or medium.com/@user -> medium.com/feed/<...>
        first = path.lstrip("/").split("/", 1)[0]
        if first and first not in ("feed", "p", "m", "tag"):
            return f"https://medium.com/feed/{first}"
        if first == "tag" and path.count("/") >= 2:
            return "https://medium.com/feed" + path
        return urlunsplit(("https", "medium.com", path or "/", parts.query, ""))
    if host.endswith(".medium.com") and path in ("", "/"):
        return f"https://{host}/feed"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def _is_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return all(HOST_LABEL.match(label) for label in ascii_host.removesuffix(".").split("."))


def canonical_link(url: str | None) -> str | None:
    """The link without tracking parameters or fragment; other query parameters stay (on many
    sites ``?p=123`` is the post)."""
    if not url:
        return None
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name.lower() not in TRACKING_PARAMS and not name.lower().startswith("utm_")
    ]
    return urlunsplit((parts.scheme, parts.netloc.lower(), parts.path or "/", urlencode(query), ""))


def medium_post_id(guid: str | None, link: str | None) -> str | None:
    """Medium's own post id, from ``<guid>https://medium.com/p/<id></guid>`` or from the end of
    a medium.com link's path."""
    if guid and (match := MEDIUM_GUID.match(guid.strip())):
        return match.group(1).lower()
    if link:
        parts = urlsplit(link)
        host = (parts.hostname or "").lower()
        is_medium = host == "medium.com" or host.endswith(".medium.com")
        if is_medium and (match := MEDIUM_SLUG_ID.search(parts.path.rstrip("/"))):
            return match.group(1).lower()
    return None


def post_key(feed_id: int, guid: str | None, link: str | None, fallback_text: str) -> str:
    """Medium ids are global, so a story in a publication's feed and in its author's feed is one
    post. Other keys are only unique within their feed (``<guid>1</guid>`` is common)."""
    if medium_id := medium_post_id(guid, link):
        return f"medium:{medium_id}"
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
