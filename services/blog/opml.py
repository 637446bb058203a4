"""The feed list as OPML 2.0, the file feed readers exchange: exported with each feed's title
and site, imported through the same checks as a feed staff type (an OPML file comes from
anywhere, so it is parsed as hostile XML)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit
from xml.etree import ElementTree

import defusedxml.ElementTree
from defusedxml import DefusedXmlException
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.blog.feeds import add_feed
from services.blog.links import MAX_URL_CHARS
from services.blog.models import Feed
from shared.errors import Conflict, InvalidInput

# A list of thousands of feeds is a few hundred kilobytes; the admin API's body limit is
# 2 MiB, and the command line reads no more than this either.
MAX_OPML_BYTES = 2 * 1024 * 1024
MAX_TITLE_CHARS = 500
# Characters XML 1.0 cannot hold at all, even escaped: a feed title that carried one would
# make the whole export unreadable.
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class Outline:
    xml_url: str
    title: str | None
    html_url: str | None


def export_opml(session: Session, title: str = "Sister Cities feeds") -> str:
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = _xml_text(title)
    body = ElementTree.SubElement(root, "body")
    for feed in session.scalars(select(Feed).order_by(Feed.id)):
        name = _xml_text(feed.title or feed.url)
        outline = {"type": "rss", "text": name, "title": name, "xmlUrl": _xml_text(feed.url)}
        if feed.site_url:
            outline["htmlUrl"] = _xml_text(feed.site_url)
        ElementTree.SubElement(body, "outline", outline)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _xml_text(text: str) -> str:
    return NOT_XML.sub("\ufffd", text)


def parse_opml(document: str | bytes) -> list[Outline]:
    """Every outline that names a feed, categories flattened, in document order. Entities
    and DTDs are refused: a billion laughs or an external entity is an error, never expanded
    or fetched."""
    size = len(document.encode() if isinstance(document, str) else document)
    if size > MAX_OPML_BYTES:
        raise InvalidInput(f"an OPML file is at most {MAX_OPML_BYTES // 1024 // 1024} MiB")
    try:
        root = defusedxml.ElementTree.fromstring(document, forbid_dtd=True)
    except DefusedXmlException:
        raise InvalidInput(
            "the OPML file declares a DTD or entities, which are refused (an OPML file needs "
            "neither)"
        ) from None
    except ElementTree.ParseError as error:
        raise InvalidInput(f"the OPML file is not well-formed XML ({error})") from None
    body = root.find("body") if root.tag == "opml" else None
    if body is None:
        raise InvalidInput("the file is not OPML: no <opml> with a <body>")
    return [
        Outline(
            xml_url=outline.get("xmlUrl", "").strip(),
            title=(outline.get("title") or outline.get("text") or "").strip()[:MAX_TITLE_CHARS]
            or None,
            html_url=_site_url(outline.get("htmlUrl")),
        )
        for outline in body.iter("outline")
        if outline.get("xmlUrl") is not None
    ]


def _site_url(text: str | None) -> str | None:
    url = (text or "").strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > MAX_URL_CHARS:
        return None
    return url


def import_opml(session: Session, document: str | bytes, now: datetime, allow_private: bool):
    """Add every feed the file names that is not registered yet; a refused or duplicate
    outline is reported and never stops the others."""
    report: dict = {"outlines_read": 0, "added": [], "already_present": [], "refused": []}
    for outline in parse_opml(document):
        report["outlines_read"] += 1
        try:
            with session.begin_nested():
                feed = add_feed(session, outline.xml_url, now, allow_private)
                # Until the first fetch tells the feed's own.
                feed.title, feed.site_url = outline.title, outline.html_url
        except Conflict:
            report["already_present"].append(outline.xml_url)
        except InvalidInput as error:
            report["refused"].append({"url": outline.xml_url, "reason": error.message})
        else:
            report["added"].append({"id": feed.id, "url": feed.url})
    return report
