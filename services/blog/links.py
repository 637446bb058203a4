"""Links as the blog keeps them: feed addresses staff type, and canonical post links without
tracking queries."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MAX_URL_CHARS = 2000
# Query parameters that only say where a click came from (Medium's ?source=rss-…, UTM, ads).
TRACKING_PARAMS = frozenset(
    {"source", "sk", "gi", "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "ref"}
)
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
    if not is_host(parts.hostname):
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


def is_host(host: str) -> bool:
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
        if not is_tracking(name)
    ]
    return urlunsplit((parts.scheme, parts.netloc.lower(), parts.path or "/", urlencode(query), ""))


def is_tracking(parameter: str) -> bool:
    name = parameter.lower()
    return name in TRACKING_PARAMS or name.startswith("utm_")


def without_tracking(url: str) -> str:
    """A link inside a story, its tracking parameters gone and everything else as written
    (the query is rewritten only when there is something to remove)."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not any(is_tracking(name) for name, _value in pairs):
        return url
    kept = [(name, value) for name, value in pairs if not is_tracking(name)]
    return urlunsplit(parts._replace(query=urlencode(kept)))
