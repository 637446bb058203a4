"""The one definition of the HTML the site trusts: the blog's sanitizer cleans feeds to it, and
the gateway cleans story HTML to it again when it renders a page, because what it reads back
from Redis (the cache, or a service's reply) is only as trustworthy as whoever can write there.
"""

from __future__ import annotations

import nh3

ALLOWED_TAGS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "a", "ul", "ol", "li", "blockquote", "figure"}
    | {"figcaption", "img", "pre", "code", "em", "strong", "b", "i", "br", "hr"}
)
ALLOWED_ATTRIBUTES = {
    "a": frozenset({"href", "title"}),
    "img": frozenset({"src", "alt", "title", "width", "height"}),
    "ol": frozenset({"start"}),
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow noopener"
# Removed with everything inside them (the allowlist alone would keep their text).
DROPPED_WITH_CONTENT = frozenset({"script", "style", "template", "noscript", "title", "textarea"})


def allowlisted(html: str) -> str:
    """``html`` with nothing outside the allowlist. The sanitizer's own output comes back
    unchanged; anything else that reached Redis loses its scripts, handlers and styles."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )
