"""Reading fetched bytes as a feed: the real Medium captures, ill-formed feeds kept, things that
are not feeds refused with a clear reason, and feedparser's own 2,107-feed corpus run through
parse and clean without a crash or anything dangerous surviving."""

import tarfile
import time
import tracemalloc

import pytest

from services.blog.parser import NotAFeed, parse_feed
from services.blog.posts import post_from_entry
from shared.events import utcnow
from tests.blog.conftest import CORPORA, medium_feed, needs_corpora
from tests.blog.test_sanitizer import assert_safe
from tests.growth import LARGE, MAX_GROWTH, SMALL, growth, repeated

URL = "https://medium.com/feed/@someone"


@needs_corpora
@pytest.mark.parametrize(
    ("name", "items", "title"),
    [
        ("jinnabaalu-user-2026.xml", 10, "Stories by Jinna Baalu on Medium"),
        ("mauromadeit-user-2018.xml", 10, "Stories by Mauro Perez on Medium"),
        ("tag-cryptocurrency-2026.xml", 10, "Cryptocurrency on Medium"),
        ("mangled/gabriel-avila-chrome-viewer-copy-2025.xml", 7,
         "Stories by Gabriel Ávila on Medium"),
    ],
)  # fmt: skip
def test_real_medium_feeds_parse(name, items, title):
    feed = parse_feed(medium_feed(name), URL, "text/xml; charset=UTF-8")
    assert (len(feed.entries), feed.title) == (items, title)
    assert feed.site_url.startswith("https://medium.com/") and "source=" not in feed.site_url
    assert (feed.warning is not None) == name.startswith("mangled/")  # kept, with a warning
    for entry in feed.entries:
        assert entry.guid.startswith("https://medium.com/p/")
        assert entry.author and entry.published and entry.html


@needs_corpora
def test_medium_details_survive_parsing():
    feed = parse_feed(medium_feed("jinnabaalu-user-2026.xml"), URL, "text/xml; charset=UTF-8")
    first = feed.entries[0]
    assert first.title.startswith("Built a Modern Web UI for Docker Registry")
    assert first.updated > first.published  # atom:updated of an edited post
    assert [tag.slug for tag in first.tags][:2] == ["docker-registry", "private-docker-registry"]
    assert first.tags[0].name == "Docker Registry"


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        (b"", "not_a_feed", "empty"),
        (b"<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
         b"<body><div id='challenge-platform'></div></body></html>", "challenge", "Cloudflare"),
        (b"<html><head><link rel='alternate' type='application/rss+xml' href='/feed.xml'>"
         b"</head><body>Hello</body></html>", "not_a_feed", "its feed seems to be /feed.xml"),
        (b"<html><body>Hello</body></html>", "not_a_feed", "web page"),
        (b"\x00\x01\x02 binary garbage \xff\xfe", "not_a_feed", "not an RSS or Atom feed"),
        (b'{"json": "is not a feed"}', "not_a_feed", "not an RSS or Atom feed"),
    ],
)  # fmt: skip
def test_what_is_not_a_feed_is_refused_with_a_reason(body, code, says):
    with pytest.raises(NotAFeed) as raised:
        parse_feed(body, URL, "text/html")
    assert raised.value.code == code
    assert says in raised.value.message


def test_utf16_with_a_bom_that_claims_utf8_still_parses():
    # Seen in the wild: PowerShell re-encoded a Medium feed as UTF-16LE, declaration unchanged.
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\r\n<rss version="2.0"><channel><title>Köln'
        "</title><item><title>Straße</title><guid>1</guid></item></channel></rss>"
    )
    feed = parse_feed(b"\xff\xfe" + xml.encode("utf-16-le"), URL, None)
    assert (feed.title, feed.entries[0].title) == ("Köln", "Straße")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>&lol9;</title><description>&lol9;</description></item></channel></rss>"""


def test_entity_expansion_is_bounded_in_time_and_memory():
    tracemalloc.start()
    started = time.monotonic()
    try:
        feed = parse_feed(BILLION_LAUGHS, URL, "application/rss+xml")
        entries = [
            post_from_entry(1, URL, entry, utcnow(), from_medium=False) for entry in feed.entries
        ]
    except NotAFeed:
        entries = []
    elapsed = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # 10^9 "lol"s would be 3 GB: what we keep is tiny, whichever way the parser refused it.
    assert peak < 100 * 1024 * 1024, peak
    assert elapsed < 30
    assert all(len(entry.content_html) < 100_000 for entry in entries)


def _feedparser_corpus():
    path = CORPORA / "feedparser-tests.tar.gz"
    if not path.exists():
        pytest.skip(f"feedparser's test corpus is not at {path}")
    with tarfile.open(path) as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.endswith((".xml", ".json")):
                yield member.name, archive.extractfile(member).read()


def test_feedparser_corpus_goes_through_parse_and_clean_safely():
    now = utcnow()
    files = parsed = entries = 0
    for name, body in _feedparser_corpus():
        files += 1
        try:
            feed = parse_feed(body, "https://example.org/feed.xml", None)
        except NotAFeed:
            continue
        parsed += 1
        for entry in feed.entries:
            post = post_from_entry(1, "https://example.org/feed.xml", entry, now, from_medium=False)
            entries += 1
            assert_safe(post.content_html), name
            assert post.url.startswith(("http://", "https://")), name
    assert files == 2107
    assert parsed > 1900 and entries > 1000, (parsed, entries)


LOCAL_FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>Local secrets</title>
<item><title>From this machine's disk</title><link>https://example.org/a</link>
<description>Read off the disk.</description></item></channel></rss>"""


@pytest.mark.parametrize("form", [str, lambda path: f"  {path}\n", lambda path: f"file://{path}"])
def test_a_body_that_names_a_local_file_is_not_opened(tmp_path, form):
    local = tmp_path / "feed.xml"
    local.write_text(LOCAL_FEED)
    with pytest.raises(NotAFeed):
        parse_feed(form(str(local)).encode(), URL, "application/rss+xml")


def test_a_body_naming_an_endless_device_is_refused_at_once():
    # feedparser once read /dev/zero until the worker's memory ran out.
    with pytest.raises(NotAFeed):
        parse_feed(b"/dev/zero", URL, "application/rss+xml")


def test_a_web_page_names_its_feed_and_a_flood_of_link_tags_takes_linear_time():
    page = (
        b'<html><head><link rel="stylesheet" href="/s.css"><link rel="alternate" '
        b'type="application/rss+xml" href="https://example.org/feed"></head></html>'
    )
    with pytest.raises(NotAFeed, match=r"its feed seems to be https://example\.org/feed"):
        parse_feed(page, URL, "text/html")

    def refuse(body: bytes) -> None:
        with pytest.raises(NotAFeed):
            parse_feed(body, URL, "text/html")

    # A web page of "<link " never closed: 48 KB took 2.6 s, with a feed type 40 s.
    for flood in ("<link ", "<link type='application/rss+xml' "):
        small, large = (f"<html {repeated(flood, size)}".encode() for size in (SMALL, LARGE))
        ratio = growth(refuse, small, large)
        assert ratio < MAX_GROWTH, f"{ratio:.0f}x from {SMALL:,} to {LARGE:,} bytes"
