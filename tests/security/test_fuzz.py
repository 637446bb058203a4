"""Generated hostile input through the parts that read what strangers write: the feed parser
and sanitizer, the search query parser and the partnership CSV import (the mailbox's subject
handling has its own in tests/notifier/test_mailbox.py). Bounded in examples to fit CI; each
must end without a crash other than the part's own clear refusal, and leave nothing dangerous
in what it outputs."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from services.blog.parser import NotAFeed, parse_feed
from services.blog.posts import post_from_entry
from services.directory.partnership_csv import ReadingReport, RowError, read_rows
from services.directory.partnerships_import import import_partnerships
from services.directory.search import search
from shared.errors import InvalidInput
from shared.events import utcnow
from tests.blog.test_sanitizer import assert_safe

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces of hostile markup: script in every disguise, handlers, dangerous schemes, deep and
# unclosed nesting, entities, comments, CDATA ends, NULs and lone surrogates' neighbours.
MARKUP = st.sampled_from([
    "<script>alert(1)</script>", "<SCRIPT SRC=//x.js>", "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">j</a>', '<a href="jav&#x09;ascript:alert(1)">j</a>',
    '<iframe src="javascript:alert(1)">', "<iframe srcdoc='<script>x</script>'>",
    "<svg onload=alert(1)>", "<math><mi xlink:href=javascript:x>", "<style>*{}</style>",
    "<div>", "</div>", "<ul><li>", "<p>", "</p>", "<figure><figcaption>", "<!--", "-->",
    "]]>", "<![CDATA[", "&lt;script&gt;", "&#0;", "\x00", "<object data=x>", "<embed src=x>",
    '<form action="javascript:x"><button>', '<img src="data:image/svg+xml,<svg onload=x>">',
    "<base href=javascript:/>", '<meta http-equiv="refresh" content="0;url=javascript:x">',
    "was originally published in", " on Medium", "<iframe", "<img", "\u202e", "<",
])  # fmt: skip
HOSTILE_HTML = st.lists(st.one_of(MARKUP, st.text(max_size=20)), max_size=40).map("".join)
HOSTILE_TEXT = st.text(max_size=60) | MARKUP


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


LINKS = st.sampled_from([
    "https://example.org/a", "javascript:alert(1)", "", "/rel", "file:///etc/passwd",
    "https://medium.com/p/0123456789ab",
])  # fmt: skip


@st.composite
def feeds(draw) -> bytes:
    items = []
    for n in range(draw(st.integers(0, 4))):
        link = draw(LINKS)
        items.append(
            f"<item><title>{cdata(draw(HOSTILE_TEXT))}</title><link>{link}</link>"
            f"<guid>{cdata(draw(HOSTILE_TEXT))}</guid><author>{cdata(draw(HOSTILE_TEXT))}</author>"
            f"<category>{cdata(draw(HOSTILE_TEXT))}</category>"
            f"<description>{cdata(draw(HOSTILE_HTML))}</description><pubDate>"
            f"{draw(st.sampled_from(['Tue, 24 Nov 2026 10:00:00 GMT', 'garbage', '']))}"
            f"</pubDate></item>{n * ''}"
        )
    channel = f"<channel><title>{cdata(draw(HOSTILE_TEXT))}</title>{''.join(items)}</channel>"
    prefix = draw(st.sampled_from(['<?xml version="1.0"?>', "", "/etc/passwd\n", "\ufeff"]))
    return (prefix + f'<rss version="2.0">{channel}</rss>').encode("utf-8", "surrogatepass")


@FUZZ
@given(body=feeds() | st.binary(max_size=400))
def test_hostile_feeds_parse_and_clean_to_safe_posts(body):
    try:
        feed = parse_feed(body, "https://example.org/feed.xml", None)
    except NotAFeed as refusal:
        assert refusal.message
        return
    for entry in feed.entries:
        post = post_from_entry(
            1, "https://example.org/feed.xml", entry, utcnow(), from_medium=False
        )
        assert_safe(post.content_html)
        # Titles, excerpts and tags are plain text, which every page and mail escapes.
        assert post.url.startswith(("http://", "https://"))
        assert not post.image or post.image.startswith("https://")


QUERIES = st.text(max_size=250) | st.lists(MARKUP | st.text(max_size=8), max_size=12).map(", ".join)


def test_hostile_searches_answer_or_refuse_clearly(full_directory):
    index = full_directory.index  # given to the examples apart: its repr is a megabyte

    @FUZZ
    @given(query=QUERIES, country=st.none() | st.text(max_size=120))
    def search_with(query, country):
        try:
            answer = search(index, query, country=country)
        except InvalidInput as refusal:
            # A clear message that never echoes what a stranger typed.
            echoed = [text for text in (query, country or "") if len(text.strip()) >= 8]
            assert refusal.message and not any(text in refusal.message for text in echoed)
            return
        json.dumps(answer)  # what the gateway sends back
        assert len(answer["results"]) <= 10

    search_with()


CELL = st.one_of(
    st.text(max_size=30), MARKUP, st.sampled_from([
        "=HYPERLINK(\"http://x\")", "+1", "-1", "@SUM(A1)", '"', '""', "\r", "\n", ",", "999",
        "-91", "181", "nan", "inf", "1e308", "Köln", "東京", "\u0000", "x" * 300,
    ]),
)  # fmt: skip
HEADERS = st.sampled_from([
    "city1,country1,lat1,lng1,city2,country2,lat2,lng2",
    "city_a,country_a,city_b,country_b,since,status,source,notes",
    "city_a,country_a,lat_a,lng_a,city_b,country_b,lat_b,lng_b,since,status",
    "", "a,b", "\ufeffcity1,country1,lat1,lng1,city2,country2,lat2,lng2",
])  # fmt: skip


@st.composite
def csv_files(draw) -> str:
    header = draw(HEADERS)
    width = max(len(header.split(",")), 1)
    rows = [
        ",".join(draw(CELL) for _ in range(draw(st.integers(width - 2, width + 1))))
        for _ in range(draw(st.integers(0, 6)))
    ]
    return "\n".join([header, *rows])


def _read(text: str) -> ReadingReport:
    report = ReadingReport()
    try:
        list(read_rows(text, report))
    except RowError as refusal:
        assert str(refusal)
    return report


@FUZZ
@given(text=csv_files() | st.text(max_size=300))
def test_hostile_csv_files_are_read_or_refused_row_by_row(text):
    report = _read(text)
    assert len(report.rejected) <= report.rows_read


def test_a_cell_larger_than_the_csv_modules_limit_is_a_rejected_row():
    text = (
        "city1,country1,lat1,lng1,city2,country2,lat2,lng2\n" + "x" * 200_000 + ",FR,1,1,y,DE,1,1"
    )
    assert _read(text).rejected


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(text=csv_files())
def test_hostile_csv_files_import_or_refuse_without_a_crash(engines, text):
    # The real import against the directory's database, rolled back: nothing stays.
    with Session(engines["directory"]) as session:
        try:
            report = import_partnerships(session, text, "fuzz.csv")
        except RowError as refusal:
            assert str(refusal)
            return
        finally:
            session.rollback()
    json.dumps(report.to_dict())
    assert report.partnerships_created <= report.rows_read
