"""Staff's command line for the blog, run as staff run it: `blog poll FEED_ID` fetches that feed
now, as `POST /api/v1/admin/feeds/{id}/poll` does; with no id, every feed."""

import re
import subprocess
import sys

import pytest

from services.blog import feeds, post_queries
from shared.db import session_scope
from shared.events import utcnow

pytestmark = pytest.mark.integration

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Twinning News</title><link>https://medium.com/twinning</link>
<item><title>A charter signed</title><link>https://medium.com/twinning/charter-0123456789ab</link>
<guid isPermaLink="false">https://medium.com/p/0123456789ab</guid>
<pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate><description>Signed.</description></item>
</channel></rss>"""


def sistercities(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sistercities", "blog", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def polled_feed(stack_env, blog_sessions, feed_server, path: str) -> int:
    """A feed registered and polled once by the command line: its id."""
    url = feed_server.serve(path, FEED)
    with session_scope(blog_sessions) as session:
        feed_id = feeds.add_feed(session, url, utcnow(), allow_private=True).id
    assert sistercities(stack_env, "poll", str(feed_id)).returncode == 0
    return feed_id


def test_poll_fetches_the_feeds_named_or_every_feed(stack, stack_env, blog_sessions, feed_server):
    urls = [feed_server.serve(path, FEED) for path in ("/feed/one", "/feed/two")]
    with session_scope(blog_sessions) as session:
        one, two = (feeds.add_feed(session, url, utcnow(), allow_private=True).id for url in urls)

    named = sistercities(stack_env, "poll", str(two))
    assert named.returncode == 0, named.stderr
    assert re.search(rf"^feed {two}: stored: 1 new or changed$", named.stdout, re.M)
    assert "polled 1 feeds: 1 posts new or changed, 0 failed" in named.stdout
    assert feed_server.hits == {"/feed/two": 1}

    every = sistercities(stack_env, "poll")
    assert every.returncode == 0, every.stderr
    assert re.search(rf"^feed {one}: stored: ", every.stdout, re.M)  # the same story: stored once
    assert "polled 2 feeds" in every.stdout
    assert feed_server.hits == {"/feed/one": 1, "/feed/two": 2}


def test_remove_feed_asks_what_happens_to_the_stories_and_hides_them_when_told(
    stack, stack_env, blog_sessions, feed_server
):
    feed_id = polled_feed(stack_env, blog_sessions, feed_server, "/feed/gone")

    unsaid = sistercities(stack_env, "remove-feed", str(feed_id))
    assert unsaid.returncode != 0 and "--stories" in unsaid.stderr
    removed = sistercities(stack_env, "remove-feed", str(feed_id), "--stories", "hide")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == f"removed feed {feed_id} and hid its 1 stories\n"
    with blog_sessions() as session:
        assert post_queries.list_posts(session)["results"] == []
        assert feeds.list_feeds(session) == []


def test_the_feed_list_goes_out_as_opml_and_comes_back_through_the_same_checks(
    stack, stack_env, blog_sessions, tmp_path
):
    with session_scope(blog_sessions) as session:
        feeds.add_feed(session, "https://medium.com/feed/twinning", utcnow(), False)
    exported = tmp_path / "feeds.opml"
    assert sistercities(stack_env, "export-opml", str(exported)).returncode == 0
    assert 'xmlUrl="https://medium.com/feed/twinning"' in exported.read_text()

    with session_scope(blog_sessions) as session:
        feeds.remove_feed(session, feeds.list_feeds(session)[0]["id"], "keep", utcnow())
    more = exported.read_text().replace(
        "</body>", '<outline text="x" xmlUrl="ftp://files.example.org/f"/></body>'
    )
    exported.write_text(more)
    imported = sistercities(stack_env, "import-opml", str(exported))
    assert imported.returncode == 0, imported.stderr
    assert re.search(r"^added feed \d+: https://medium.com/feed/twinning$", imported.stdout, re.M)
    assert "refused: ftp://files.example.org/f: a feed address starts with http" in imported.stdout
    assert imported.stdout.endswith("read 2 feeds: 1 added (fetched at the next poll), "
                                    "0 already present, 1 refused\n")  # fmt: skip

    hostile = tmp_path / "laughs.opml"
    hostile.write_text('<!DOCTYPE opml [<!ENTITY a "ha">]><opml><body/></opml>')
    refused = sistercities(stack_env, "import-opml", str(hostile))
    assert refused.returncode == 1 and "DTD or entities" in refused.stderr


def test_post_cities_shows_each_link_with_its_evidence_and_corrects_them(
    stack, stack_env, blog_sessions
):
    from services.blog import city_links
    from services.blog.posts import PostData, store_posts

    story = PostData(
        key="k", title="Delegates", author="A", url="https://example.org/k", image=None,
        excerpt="e", content_html="<p>x</p>", tags=[], reading_minutes=1,
        published_at=utcnow(), updated_at=None, content_hash="h1",
    )  # fmt: skip
    with session_scope(blog_sessions) as session:
        (post_id,) = store_posts(session, None, [story], utcnow())
        found = [{"id": 7, "evidence": ["'from Alphaville'"]}, {"id": 8, "evidence": []}]
        city_links.apply_links(session, [found], [[post_id, "h1"]])

    shown = sistercities(stack_env, "post-cities", str(post_id))
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^\s+7  found  'from Alphaville'$", shown.stdout, re.M), shown.stdout

    corrected = sistercities(stack_env, "post-cities", str(post_id), "--remove", "8", "--add", "9")
    assert corrected.returncode == 0, corrected.stderr
    assert re.search(r"^\s+9  staff  added by staff$", corrected.stdout, re.M), corrected.stdout
    assert "staff remove 8" in corrected.stdout
    with blog_sessions() as session:
        assert post_queries.get_post(session, post_id)["city_ids"] == [7, 9]

    unknown = sistercities(stack_env, "post-cities", "999999", "--add", "1")
    assert unknown.returncode != 0 and "no post with id 999999" in unknown.stderr


def test_feed_cities_sets_the_organisations_cities_and_asks_for_links_again(
    stack, stack_env, blog_sessions, feed_server
):
    feed_id = polled_feed(stack_env, blog_sessions, feed_server, "/feed/org")

    set_ = sistercities(stack_env, "feed-cities", str(feed_id), "7", "5", "7")
    assert set_.returncode == 0, set_.stderr
    assert f"feed {feed_id}: organisation's cities 5, 7" in set_.stdout
    assert "asked the directory to link 1 posts to cities" in set_.stdout
    with blog_sessions() as session:
        [listed] = feeds.list_feeds(session)
    assert listed["city_ids"] == [5, 7]

    cleared = sistercities(stack_env, "feed-cities", str(feed_id))
    assert cleared.returncode == 0 and "organisation's cities none" in cleared.stdout
    unknown = sistercities(stack_env, "feed-cities", "999999", "5")
    assert unknown.returncode != 0 and "no feed with id 999999" in unknown.stderr
