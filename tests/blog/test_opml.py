"""The feed list as OPML: an export imported into an empty blog gives the same feeds; an
import adds through the same checks as staff's typed feeds and reports each outline; hostile
files (entity bombs, external entities, huge ones) are refused whole and read nothing."""

from sqlalchemy import select

from services.blog import feeds, opml
from services.blog.models import Feed
from shared.db import session_scope
from shared.errors import InvalidInput
from shared.events import utcnow

FEEDS = [
    ("https://medium.com/feed/sister-cities", "Sister <Cities> & \"Friends\"", "https://medium.com/sister-cities"),
    ("https://twinning.example.org/rss.xml", "Twinning\nNews", None),
    ("https://other.example.net/feed?x=1&y=2", None, "https://other.example.net/"),
]  # fmt: skip


def register(sessions, rows) -> None:
    with session_scope(sessions) as session:
        for url, title, site_url in rows:
            feed = feeds.add_feed(session, url, utcnow(), allow_private=False)
            feed.title, feed.site_url = title, site_url


def stored(sessions) -> list[tuple]:
    with sessions() as session:
        rows = session.scalars(select(Feed).order_by(Feed.id))
        return [(feed.url, feed.title, feed.site_url) for feed in rows]


def import_file(sessions, document, allow_private=False) -> dict:
    with session_scope(sessions) as session:
        return opml.import_opml(session, document, utcnow(), allow_private)


def test_an_exported_list_imported_into_an_empty_blog_gives_the_same_feeds(
    blog_sessions, clean_databases
):
    register(blog_sessions, FEEDS)
    with blog_sessions() as session:
        document = opml.export_opml(session)
    assert document.startswith("<?xml version='1.0' encoding='utf-8'?>\n<opml version=\"2.0\">")
    assert 'xmlUrl="https://other.example.net/feed?x=1&amp;y=2"' in document
    assert "Sister &lt;Cities&gt; &amp; &quot;Friends&quot;" in document
    before = stored(blog_sessions)

    with session_scope(blog_sessions) as session:
        session.query(Feed).delete()
    report = import_file(blog_sessions, document)

    assert [added["url"] for added in report["added"]] == [url for url, _, _ in FEEDS]
    assert (report["already_present"], report["refused"]) == ([], [])
    # A feed without a title is exported under its address, which the first fetch replaces.
    assert stored(blog_sessions) == [
        before[0], before[1], (FEEDS[2][0], FEEDS[2][0], FEEDS[2][2])
    ]  # fmt: skip
    again = import_file(blog_sessions, document)
    assert (again["added"], again["already_present"]) == ([], [url for url, _, _ in FEEDS])


def test_an_import_flattens_categories_and_reports_each_refusal_without_stopping(
    blog_sessions,
):
    register(blog_sessions, FEEDS[:1])
    document = """<?xml version="1.0" encoding="UTF-8"?>
    <opml version="2.0"><head><title>A reader's list</title></head><body>
      <outline text="Twinning">
        <outline text="Europe"><outline type="rss" text="One" xmlUrl="https://one.example.org/feed"/></outline>
        <outline type="rss" text="Known" xmlUrl="https://medium.com/feed/sister-cities"/>
      </outline>
      <outline type="rss" text="FTP" xmlUrl="ftp://files.example.org/feed"/>
      <outline type="rss" text="Inside" xmlUrl="http://10.0.0.7/feed"/>
      <outline type="rss" text="Blank" xmlUrl=""/>
      <outline type="rss" text="One again" xmlUrl="https://one.example.org/feed"
               htmlUrl="javascript:alert(1)"/>
      <outline type="rss" text="Two" xmlUrl="https://two.example.org/feed" htmlUrl="https://two.example.org/"/>
    </body></opml>"""  # fmt: skip

    report = import_file(blog_sessions, document)

    assert report["outlines_read"] == 7
    assert [added["url"] for added in report["added"]] == [
        "https://one.example.org/feed", "https://two.example.org/feed"
    ]  # fmt: skip
    assert report["already_present"] == [
        "https://medium.com/feed/sister-cities", "https://one.example.org/feed"
    ]  # fmt: skip
    refused = {row["url"]: row["reason"] for row in report["refused"]}
    assert "http" in refused["ftp://files.example.org/feed"]
    assert "private" in refused["http://10.0.0.7/feed"]
    assert set(refused) == {"ftp://files.example.org/feed", "http://10.0.0.7/feed", ""}
    assert stored(blog_sessions)[1:] == [
        ("https://one.example.org/feed", "One", None),
        ("https://two.example.org/feed", "Two", "https://two.example.org/"),
    ]


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">
<!ENTITY i "&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;"><!ENTITY j "&i;&i;&i;&i;&i;&i;&i;&i;&i;&i;">]>
<opml version="2.0"><head><title>&j;</title></head><body>
<outline type="rss" text="&j;" xmlUrl="https://laughs.example.org/feed"/></body></opml>"""


def external_entity(target: str) -> str:
    return f"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY secret SYSTEM "{target}">]>
<opml version="2.0"><head><title>x</title></head><body>
<outline type="rss" text="&secret;" xmlUrl="https://external.example.org/feed"/></body></opml>"""


def refusal(sessions, document) -> str:
    try:
        import_file(sessions, document)
    except InvalidInput as error:
        return error.message
    raise AssertionError("the file was accepted")


def test_hostile_opml_is_refused_whole_with_a_clear_reason_and_nothing_is_fetched(
    blog_sessions, feed_server
):
    secret = feed_server.serve("/secret", "Stolen")
    assert "DTD or entities" in refusal(blog_sessions, BILLION_LAUGHS)
    assert "DTD or entities" in refusal(blog_sessions, external_entity(secret))
    assert "DTD or entities" in refusal(blog_sessions, external_entity("file:///etc/passwd"))
    assert feed_server.hits["/secret"] == 0

    padding = "<outline text='filler'/>" * (10 * 1024 * 1024 // 24)
    huge = f"<opml version='2.0'><head/><body>{padding}</body></opml>"
    assert "at most 2 MiB" in refusal(blog_sessions, huge)
    assert "not well-formed" in refusal(blog_sessions, "<opml><body><outline")
    assert "not OPML" in refusal(blog_sessions, "<rss version='2.0'><channel/></rss>")
    assert stored(blog_sessions) == []
