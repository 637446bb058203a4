"""Turning a feed's HTML into what the site may show: an allowlist sanitizer (nh3), Medium's
quirks handled (tracking pixel, embeds), and the plain text the excerpt, reading time and city
matching are made from.

The sanitizer runs on everything, last: the small rewrites before it (embeds to links) work on
untrusted HTML, so a mistake there can only produce something the allowlist then cleans.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urljoin, urlsplit

import nh3

from shared.html_allowlist import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    DROPPED_WITH_CONTENT,
    LINK_REL,
    URL_SCHEMES,
)

MAX_HTML_CHARS = 2_000_000
EXCERPT_WORDS = 60
EXCERPT_MAX_CHARS = 420
EXCERPT_HTML_CHARS = 6000
WORDS_PER_MINUTE = 265

_IFRAME = re.compile(r"<iframe\b([^>]*)>(?:.*?</iframe\s*>)?", re.IGNORECASE | re.DOTALL)
_SRC_ATTRIBUTE = re.compile(r"""\bsrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_IMG = re.compile(r"<img\b[^>]*>")
_ATTRIBUTE = re.compile(r'\b([a-z-]+)="([^"]*)"')
_BLOCK_BOUNDARY = re.compile(
    r"</?(?:p|h[1-6]|li|ul|ol|blockquote|figure|figcaption|pre|br|hr)\b[^>]*>", re.IGNORECASE
)
_FIGCAPTION = re.compile(r"<figcaption>.*?</figcaption>", re.DOTALL)
_EMPTY_FIGURE = re.compile(r"<figure>\s*</figure>")
_ANY_TAG = re.compile(r"<[^>]*>")
_MEDIUM_FOOTER = re.compile(r"\bwas originally published in\b.*\bon Medium\b", re.DOTALL)


@dataclass(frozen=True)
class CleanContent:
    html: str
    text: str  # plain text: what matching and reading time use
    excerpt: str
    image: str | None
    reading_minutes: int


def clean_content(raw_html: str, base_url: str | None = None) -> CleanContent:
    safe = sanitize(raw_html, base_url)
    images = _image_sources(safe)
    text = plain_text(safe)
    # The excerpt needs only the first words: read the opening of the HTML, cut after a tag.
    opening = (
        safe
        if len(safe) <= EXCERPT_HTML_CHARS
        else safe[: safe.rfind(">", 0, EXCERPT_HTML_CHARS) + 1]
    )
    return CleanContent(
        html=safe,
        text=text,
        excerpt=excerpt(
            plain_text(opening, captions=False, footer=False), more=len(opening) < len(safe)
        ),
        image=images[0] if images else None,
        reading_minutes=reading_minutes(text, len(images)),
    )


def sanitize(raw_html: str, base_url: str | None = None) -> str:
    """Allowlisted HTML: links and images absolute, images https only, links marked
    ``rel="nofollow noopener"``, Medium's tracking pixel and embeds' iframes gone."""
    raw_html = raw_html[:MAX_HTML_CHARS]
    raw_html = _IFRAME.sub(_embed_as_link, raw_html)

    def absolute(tag: str, attribute: str, value: str) -> str | None:
        if attribute not in ("href", "src"):
            return value
        if value.startswith("https://"):  # most links: no parsing needed
            return value
        url = urljoin(base_url, value.strip()) if base_url else value.strip()
        scheme = urlsplit(url).scheme.lower()
        if tag == "img":
            return url if scheme == "https" else None  # no mixed content on an https site
        return url if scheme in URL_SCHEMES else None

    cleaned = nh3.clean(
        raw_html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=absolute,
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )
    cleaned = _IMG.sub(_keep_real_image, cleaned)
    return _EMPTY_FIGURE.sub("", cleaned).strip()


def _embed_as_link(match: re.Match) -> str:
    src = _SRC_ATTRIBUTE.search(match.group(1))
    if not src:
        return ""
    url = html.unescape(next(group for group in src.groups() if group is not None)).strip()
    target = _embedded_url(url)
    if urlsplit(target).scheme not in ("http", "https"):
        return ""
    escaped = html.escape(target, quote=True)
    return f'<p><a href="{escaped}">{escaped}</a></p>'


def _embedded_url(url: str) -> str:
    """What an embed shows: embedly's widget names the original in its ``url`` or ``src``."""
    parts = urlsplit(url)
    if (parts.hostname or "").endswith("embedly.com"):
        query = parse_qs(parts.query)
        for name in ("url", "src"):
            if query.get(name):
                return query[name][0]
    return url


def _keep_real_image(match: re.Match) -> str:
    attributes = dict(_ATTRIBUTE.findall(match.group()))
    src = html.unescape(attributes.get("src", ""))
    if not src:
        return ""
    if "medium.com/_/stat" in src:
        return ""
    if attributes.get("width") == "1" and attributes.get("height") == "1":
        return ""  # a tracking pixel, whoever serves it
    return match.group()


def _image_sources(safe_html: str) -> list[str]:
    return [
        html.unescape(src)
        for tag in _IMG.findall(safe_html)
        if (src := dict(_ATTRIBUTE.findall(tag)).get("src"))
    ]


def plain_text(safe_html: str, captions: bool = True, footer: bool = True) -> str:
    """The words of sanitized HTML, with blocks kept apart by spaces."""
    if not captions:
        safe_html = _FIGCAPTION.sub(" ", safe_html)
    text = _BLOCK_BOUNDARY.sub(" ", safe_html)
    text = " ".join(html.unescape(_ANY_TAG.sub("", text)).split())
    if not footer and (start := text.find("was originally published in")) >= 0:
        text = text[:start] + _MEDIUM_FOOTER.sub("", text[start:])
        text = text.strip()
    return text


def excerpt(
    text: str, words: int = EXCERPT_WORDS, max_chars: int = EXCERPT_MAX_CHARS, more: bool = False
) -> str:
    """About ``words`` words, cut at a word boundary, ending with "…" when cut (or when
    ``more`` says the text goes on)."""
    parts = text.split()
    cut = " ".join(parts[:words])
    if len(cut) > max_chars:
        cut = cut[:max_chars].rsplit(" ", 1)[0] if " " in cut[:max_chars] else cut[:max_chars]
    if len(parts) <= words and cut == " ".join(parts) and not more:
        return cut
    return cut.rstrip(".,;:!?-\u2013\u2014 ") + "…"


def reading_minutes(text: str, images: int = 0) -> int:
    """Medium's rule of thumb: 265 words a minute, plus 12 seconds an image."""
    seconds = len(text.split()) / WORDS_PER_MINUTE * 60 + 12 * images
    return max(1, math.ceil(seconds / 60))


def plain_title(title: str) -> str:
    """Titles are text: any markup in them is removed, entities decoded, space collapsed."""
    text = nh3.clean(title, tags=set(), clean_content_tags=set(DROPPED_WITH_CONTENT))
    return " ".join(html.unescape(text).split())
