"""Reading fetched bytes as a feed: feedparser on a stream of the bytes only (handed bytes or a
string, it first tries them as a file path or URL: a body reading "/dev/zero" or naming a local
file would be opened), its own sanitizer off (nh3 does that job, later and faster), one
normalized model out.

What parses is kept even when the feed is ill-formed ("bozo"); that is reported as a warning.
What is not a feed at all (a challenge page, a web page, garbage) is a ``NotAFeed`` with a
message staff can act on.
"""

from __future__ import annotations

import calendar
import io
import re
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin

import feedparser

from services.blog.links import canonical_link

MAX_ENTRIES = 500
_SLUG_JUNK = re.compile(r"[^\w]+", re.UNICODE)
# Linear in the page: a tag ends at the next "<" or ">", and its attributes are read apart.
_LINK_TAG = re.compile(r"<link\b[^<>]*>", re.IGNORECASE)
_FEED_TYPE = re.compile(r"""type=["']application/(?:rss|atom)\+xml["']""", re.IGNORECASE)
_HREF = re.compile(r"""href=["']([^"']+)["']""", re.IGNORECASE)


class NotAFeed(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Tag:
    slug: str
    name: str


@dataclass
class ParsedEntry:
    guid: str | None
    link: str | None
    title: str
    author: str | None
    published: datetime | None
    updated: datetime | None
    tags: list[Tag]
    html: str
    image: str | None


@dataclass
class ParsedFeed:
    title: str | None
    site_url: str | None
    ttl_minutes: int | None
    warning: str | None
    entries: list[ParsedEntry] = field(default_factory=list)
    # WebSub discovery: the hub the feed names (<link rel="hub">) and its own address
    # (<link rel="self">), the topic to subscribe to.
    hub_url: str | None = None
    self_url: str | None = None


def parse_feed(body: bytes, url: str, content_type: str | None = None) -> ParsedFeed:
    if not body.strip():
        raise NotAFeed("not_a_feed", "the response was empty")
    if _is_challenge(body):
        raise NotAFeed(
            "challenge",
            "the server answered with a bot challenge page (Cloudflare) instead of the feed; "
            "it may let the fetcher through later",
        )
    # No base URI is given: feedparser would resolve one against every element, a quarter of
    # its time; the few relative links are resolved here instead (xml:base is not honoured).
    headers = {"content-type": content_type} if content_type else {}
    parsed = feedparser.parse(
        io.BytesIO(body), response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )
    if not parsed.version and not parsed.entries:
        raise NotAFeed("not_a_feed", _not_a_feed_message(body, parsed))
    warning = None
    # A charset header that disagrees with the bytes is the server's slip, not a broken feed.
    if parsed.bozo and not isinstance(parsed.bozo_exception, feedparser.CharacterEncodingOverride):
        warning = f"the feed is not well-formed, kept what parsed: {parsed.bozo_exception}"
    channel = parsed.feed
    return ParsedFeed(
        title=_text(channel.get("title"), 500),
        site_url=canonical_link(_absolute(url, channel.get("link"))),
        ttl_minutes=_int(channel.get("ttl")),
        warning=warning[:1000] if warning else None,
        entries=[_entry(entry, url) for entry in parsed.entries[:MAX_ENTRIES]],
        hub_url=_link(channel, "hub", url),
        self_url=_link(channel, "self", url),
    )


def _link(channel, rel: str, base: str) -> str | None:
    for link in channel.get("links") or []:
        if link.get("rel") == rel and (href := _text(link.get("href"), 2000)):
            href = _absolute(base, href) or ""
            return href if href.startswith(("https://", "http://")) else None
    return None


def _absolute(base: str, link: str | None) -> str | None:
    if not link or link.startswith(("https://", "http://")):
        return link
    return urljoin(base, link.strip())


def _entry(entry, url: str) -> ParsedEntry:
    content = entry.get("content") or []
    html_parts = [part.get("value", "") for part in content if part.get("value")]
    body = max(html_parts, key=len) if html_parts else entry.get("summary", "") or ""
    return ParsedEntry(
        guid=_text(entry.get("id"), 2000),
        link=_absolute(url, entry.get("link")),
        title=_text(entry.get("title"), 1000) or "",
        author=_text(entry.get("author"), 300),
        published=_moment(_own(entry, "published_parsed") or _own(entry, "updated_parsed")),
        updated=_moment(_own(entry, "updated_parsed")),
        tags=_tags(entry.get("tags") or []),
        html=body,
        image=_media_image(entry),
    )


def _own(entry, key: str):
    # FeedParserDict answers a missing "updated" with "published" (and warns): ask the dict.
    return dict.get(entry, key)


def _tags(raw_tags: list) -> list[Tag]:
    tags: dict[str, Tag] = {}
    for raw in raw_tags[:20]:
        term = (raw.get("label") or raw.get("term") or "").strip()
        slug = slugify(raw.get("term") or term)
        if not slug or slug in tags:
            continue
        # Medium's categories are slugs ("software-engineering"): show them as words.
        name = term if term != slug else slug.replace("-", " ").title()
        tags[slug] = Tag(slug=slug, name=name[:100])
    return list(tags.values())


def slugify(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SLUG_JUNK.sub("-", text).strip("-_")[:100]


def _media_image(entry) -> str | None:
    candidates = [*entry.get("media_thumbnail", []), *entry.get("media_content", [])]
    candidates += [
        link
        for link in entry.get("links", [])
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/")
    ]
    for candidate in candidates:
        url = candidate.get("url") or candidate.get("href") or ""
        if url.startswith("https://"):
            return url[:2000]
    return None


def _moment(parsed: time.struct_time | None) -> datetime | None:
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _text(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    value = " ".join(str(value).split())
    return value[:limit] or None


def _int(value) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 10_000_000 else None


def _is_challenge(body: bytes) -> bool:
    head = body[:20_000].lower()
    return b"<html" in head and (
        b"just a moment..." in head or b"challenge-platform" in head or b"cf-chl" in head
    )


def _not_a_feed_message(body: bytes, parsed) -> str:
    head = body[:200_000].decode("utf-8", "replace")
    if "<html" in head[:2000].lower():
        for tag in _LINK_TAG.findall(head):
            if _FEED_TYPE.search(tag) and (href := _HREF.search(tag)):
                found = href[1][:300]
                return f"the address is a web page, not a feed; its feed seems to be {found}"
        return "the address is a web page (HTML), not an RSS or Atom feed"
    reason = parsed.get("bozo_exception")
    return f"the response is not an RSS or Atom feed ({reason or 'no feed elements found'})"
