"""A campaign's body, written by staff in Markdown, as the HTML and the plain text its mail
and its public page show.

Markdown's own HTML pass-through is off (raw HTML is shown as text), and what the renderer
makes is cleaned to the site's allowlist all the same (``shared.html_allowlist``, as the
blog's stories are): a staff account is one more thing an attacker may hold. No image is
kept: a remote image in a mail is a tracking pixel whoever put it there."""

from __future__ import annotations

import html
import re

import nh3
from markdown_it import MarkdownIt

from shared.html_allowlist import allowlisted

MAX_MARKDOWN_CHARS = 50_000

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).disable("image")
# Bounded, so that a body of many unclosed links costs linear time, not quadratic; a link
# longer than this (none that Markdown a person writes makes) keeps its words only.
_LINK = re.compile(r'<a href="([^"<>]{0,4096})"[^<>]{0,512}>(.{0,4096}?)</a>', re.S)
_BLOCK_END = re.compile(r"</(p|h[1-6]|li|blockquote|pre)>|<br\s*/?>|<hr\s*/?>")
_LIST_ITEM = re.compile(r"<li>")
_BLANK_LINES = re.compile(r"\n{3,}")


def html_of(markdown: str) -> str:
    return allowlisted(_markdown.render(markdown[:MAX_MARKDOWN_CHARS])).strip()


def text_of(body_html: str) -> str:
    """The plain-text part: the HTML's text, each link written out after its words."""

    def link(match: re.Match) -> str:
        url, words = html.unescape(match.group(1)), match.group(2)
        return words if html.unescape(words) == url else f"{words} ({url})"

    text = _LINK.sub(link, body_html)
    text = _LIST_ITEM.sub("- ", _BLOCK_END.sub("\n\n", text))
    text = html.unescape(nh3.clean(text, tags=set()))
    return _BLANK_LINES.sub("\n\n", text).strip() + "\n"
