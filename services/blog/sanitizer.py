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

from services.blog.links import without_tracking
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

# Every pattern here runs on text a feed wrote, so each is linear in it: "[^<>]*" rather than
# "[^>]*" (a run of "<img" with no ">" would otherwise be rescanned from each one), and what a
# lazy ".*?" would look for to the end of the text from every start is found with str.find.
_SRC_ATTRIBUTE = re.compile(r"""\bsrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_IMG = re.compile(r"<img\b[^<>]*>")
_ATTRIBUTE = re.compile(r'(?<![\w-])([a-z-]+)="([^"]*)"')
_BLOCK_BOUNDARY = re.compile(
    r"</?(?:p|h[1-6]|li|ul|ol|blockquote|figure|figcaption|pre|br|hr)\b[^<>]*>", re.IGNORECASE
)
_EMPTY_FIGURE = re.compile(r"<figure>\s*</figure>")
_ANY_TAG = re.compile(r"<[^<>]*>")
FOOTER_START, FOOTER_END = "was originally published in", "on Medium"
# nh3's HTML parser takes time in proportion to the depth of open elements for each new one:
# a flood of "<div>" or "<ul><li>" never closed is quadratic in its length. Real
# stories nest a few levels; HTML nested deeper than this is kept as its text.
MAX_NESTING = 100
_OPENING_OR_CLOSING_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)")
# Elements that never hold others, and those a sibling of their kind closes ("<li><li>").
NOT_NESTING = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param"}
    | {"source", "track", "wbr", "p", "li", "dt", "dd", "option", "tr", "td", "th"}
)


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
    if nesting_depth(raw_html) > MAX_NESTING:
        raw_html = _ANY_TAG.sub(" ", raw_html)
    raw_html = _embeds_as_links(raw_html)

    def absolute(tag: str, attribute: str, value: str) -> str | None:
        if attribute not in ("href", "src"):
            return value
        if value.startswith("https://"):  # most links: no parsing needed
            return without_tracking(value) if "?" in value and tag == "a" else value
        url = urljoin(base_url, value.strip()) if base_url else value.strip()
        scheme = urlsplit(url).scheme.lower()
        if tag == "img":
            return url if scheme == "https" else None  # no mixed content on an https site
        if scheme not in URL_SCHEMES:
            return None
        return without_tracking(url) if scheme != "mailto" else url

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


def nesting_depth(raw_html: str) -> int:
    """How deep elements would nest, counting each opening tag without its closing one
    (an upper bound of what a parser builds: it also closes some tags by itself)."""
    depth = deepest = 0
    for closing, name in _OPENING_OR_CLOSING_TAG.findall(raw_html):
        if name.lower() in NOT_NESTING:
            continue
        depth = max(depth - 1, 0) if closing else depth + 1
        deepest = max(deepest, depth)
    return deepest


def _embeds_as_links(raw_html: str) -> str:
    """Each ``<iframe …>``, with what it holds up to its ``</iframe>``, becomes a link to what
    it embeds. One pass with str.find: the next closing tag is looked up only once the scan
    has passed the previous one."""
    lower = raw_html.lower()
    pieces, position = [], 0
    closing, closing_end = 0, 0  # the next "</iframe" at or after the scan, and its ">"
    while (start := lower.find("<iframe", position)) >= 0:
        after = start + len("<iframe")
        if after < len(lower) and (lower[after].isalnum() or lower[after] == "_"):
            pieces.append(raw_html[position:after])  # "<iframes…" is another tag
            position = after
            continue
        end = lower.find(">", after)
        if end < 0:
            break
        if 0 <= closing < end:
            closing = lower.find("</iframe", end)
            closing_end = lower.find(">", closing) if closing >= 0 else -1
        pieces.append(raw_html[position:start])
        pieces.append(_embed_as_link(raw_html[after:end]))
        position = closing_end + 1 if closing >= 0 and closing_end >= 0 else end + 1
    pieces.append(raw_html[position:])
    return "".join(pieces)


def _embed_as_link(attributes: str) -> str:
    src = _SRC_ATTRIBUTE.search(attributes)
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
        safe_html = _without_captions(safe_html)
    text = _BLOCK_BOUNDARY.sub(" ", safe_html)
    text = " ".join(html.unescape(_ANY_TAG.sub("", text)).split())
    if not footer and (start := text.find(FOOTER_START)) >= 0:
        # Medium's "… was originally published in X on Medium, where …" line, to its end.
        end = text.rfind(FOOTER_END)
        if end > start:
            text = (text[:start] + text[end + len(FOOTER_END) :]).strip()
    return text


def _without_captions(safe_html: str) -> str:
    pieces, position = [], 0
    while (start := safe_html.find("<figcaption>", position)) >= 0:
        end = safe_html.find("</figcaption>", start)
        if end < 0:
            break
        pieces += [safe_html[position:start], " "]
        position = end + len("</figcaption>")
    pieces.append(safe_html[position:])
    return "".join(pieces)


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
