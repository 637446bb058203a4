"""Staff's feed list through the admin API with the real workers: removing a feed asks what
happens to its stories (hidden ones leave the API, the pages and the Atom feed; kept ones
stay), and the list goes out and comes back as OPML, hostile files refused whole."""

import defusedxml.ElementTree
import pytest

from tests.feed_server import FeedServer
from tests.stack import wait_for

pytestmark = pytest.mark.integration

OPML_URL = "/api/v1/admin/feeds/opml"


def feed(name: str, guid: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>{name} News</title><link>https://{name}.example.org/</link>
<item><title>{name} signs a charter</title><link>https://{name}.example.org/charter</link>
<guid isPermaLink="false">{guid}</guid><pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate>
<description>Signed in {name}.</description></item></channel></rss>"""


@pytest.fixture
def feed_server():
    with FeedServer() as server:
        yield server


def story_ids(client) -> set[int]:
    response = client.get("/api/v1/posts")
    assert response.status_code == 200, response.json
    return {post["id"] for post in response.json["results"]}


def register(client, headers, url: str) -> int:
    response = client.post("/api/v1/admin/feeds", json={"url": url}, headers=headers)
    assert response.status_code == 201, response.json
    return response.json["id"]


@pytest.fixture
def two_feeds(client, stack, admin_headers, clean_databases, feed_server) -> dict:
    """Feeds "gone" and "kept", one story each, stored and listed."""
    ids = {
        name: register(client, admin_headers, feed_server.serve(f"/{name}", feed(name, name)))
        for name in ("gone", "kept")
    }
    wait_for(lambda: len(story_ids(client)) == 2, what="both stories to be listed")
    stories = {}
    for post in client.get("/api/v1/posts").json["results"]:
        stories["gone" if post["feed_id"] == ids["gone"] else "kept"] = post["id"]
    return {"feeds": ids, "stories": stories}


def test_removing_a_feed_without_saying_what_happens_to_its_stories_is_refused(
    client, admin_headers, two_feeds
):
    gone = two_feeds["feeds"]["gone"]
    for query in ("", "?stories=delete"):
        answer = client.delete(f"/api/v1/admin/feeds/{gone}{query}", headers=admin_headers)
        assert answer.status_code == 400, answer.json
        assert "keep" in answer.json["error"]["message"]
    assert len(client.get("/api/v1/admin/feeds", headers=admin_headers).json["results"]) == 2
    missing = client.delete("/api/v1/admin/feeds/999999?stories=keep", headers=admin_headers)
    assert missing.status_code == 404


def test_a_feed_removed_with_its_stories_hidden_leaves_no_story_in_public(
    client, admin_headers, two_feeds
):
    gone, kept = two_feeds["stories"]["gone"], two_feeds["stories"]["kept"]
    assert client.get(f"/blog/{gone}").status_code == 200  # read once, so cached
    answer = client.delete(
        f"/api/v1/admin/feeds/{two_feeds['feeds']['gone']}?stories=hide", headers=admin_headers
    )
    assert answer.status_code == 200, answer.json
    assert answer.json == {"deleted": two_feeds["feeds"]["gone"], "stories_hidden": 1}

    wait_for(lambda: story_ids(client) == {kept}, what="the hidden story to leave the list")
    assert client.get(f"/api/v1/posts/{gone}").status_code == 404
    assert client.get(f"/blog/{gone}").status_code == 404
    for page in ("/blog", "/feed.xml", "/"):
        body = client.get(page).get_data(as_text=True)
        assert "gone signs a charter" not in body and "kept signs a charter" in body, page


def test_a_feed_removed_with_its_stories_kept_leaves_them_listed(client, admin_headers, two_feeds):
    answer = client.delete(
        f"/api/v1/admin/feeds/{two_feeds['feeds']['gone']}?stories=keep", headers=admin_headers
    )
    assert answer.json == {"deleted": two_feeds["feeds"]["gone"], "stories_hidden": 0}
    assert client.get("/api/v1/admin/feeds", headers=admin_headers).json["results"] != []
    assert story_ids(client) == set(two_feeds["stories"].values())
    gone = two_feeds["stories"]["gone"]
    assert client.get(f"/api/v1/posts/{gone}").status_code == 200
    assert "gone signs a charter" in client.get("/blog").get_data(as_text=True)


def upload(client, headers, content: bytes):
    # Encoded here: the test client spools a big form to a file it leaves open when the
    # gateway refuses to read it.
    boundary = "sistercities-test-boundary"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="feeds.opml"\r\n'
        "Content-Type: text/x-opml\r\n\r\n"
    )
    return client.post(
        OPML_URL,
        data=head.encode() + content + f"\r\n--{boundary}--\r\n".encode(),
        headers=headers,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def listed_feeds(client, headers) -> list[tuple]:
    rows = client.get("/api/v1/admin/feeds", headers=headers).json["results"]
    return sorted((row["url"], row["title"], row["site_url"]) for row in rows)


def test_the_feed_list_exported_as_opml_imports_into_an_empty_blog_as_the_same_feeds(
    client, admin_headers, two_feeds, feed_server
):
    wait_for(
        lambda: all(title for _, title, _ in listed_feeds(client, admin_headers)),
        what="both feeds to be fetched and titled",
    )
    before = listed_feeds(client, admin_headers)
    assert client.get(OPML_URL).status_code == 401
    exported = client.get(OPML_URL, headers=admin_headers)
    assert exported.status_code == 200
    assert exported.content_type == "text/x-opml; charset=utf-8"
    outlines = defusedxml.ElementTree.fromstring(exported.data).iter("outline")
    assert sorted((o.get("xmlUrl"), o.get("title"), o.get("htmlUrl")) for o in outlines) == before

    for feed_id in two_feeds["feeds"].values():
        client.delete(f"/api/v1/admin/feeds/{feed_id}?stories=keep", headers=admin_headers)
    assert listed_feeds(client, admin_headers) == []
    report = upload(client, admin_headers, exported.data)
    assert report.status_code == 200, report.json
    assert sorted(added["url"] for added in report.json["added"]) == [url for url, _, _ in before]
    assert (report.json["already_present"], report.json["refused"]) == ([], [])
    assert listed_feeds(client, admin_headers) == before

    again = upload(client, admin_headers, exported.data).json
    assert (again["added"], len(again["already_present"])) == ([], 2)


def test_hostile_opml_through_the_admin_api_is_refused_clearly(
    client, stack, admin_headers, clean_databases, feed_server
):
    secret = feed_server.serve("/secret", "Stolen")
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "ha">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        b'<opml version="2.0"><head/><body><outline text="&c;" xmlUrl="https://x.org/f"/>'
        b"</body></opml>"
    )  # fmt: skip
    external = (
        f'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY s SYSTEM "{secret}">]>'
        '<opml version="2.0"><head/><body><outline text="&s;" xmlUrl="https://x.org/f"/>'
        "</body></opml>"
    ).encode()
    for hostile in (laughs, external):
        answer = upload(client, admin_headers, hostile)
        assert answer.status_code == 400, answer.json
        assert "DTD or entities" in answer.json["error"]["message"]
    assert feed_server.hits["/secret"] == 0

    huge = b"<opml version='2.0'><body>" + b"<outline text='x'/>" * 600_000 + b"</body></opml>"
    too_big = upload(client, admin_headers, huge)
    assert too_big.status_code == 413 and too_big.json["error"]["code"] == "payload_too_large"
    not_text = upload(client, admin_headers, b"\xff\xfe<opml/>")
    assert not_text.status_code == 400 and "UTF-8" in not_text.json["error"]["message"]
    assert listed_feeds(client, admin_headers) == []


def test_a_paused_feed_is_not_polled_until_staff_resume_it(client, admin_headers, two_feeds):
    feed_id = two_feeds["feeds"]["gone"]
    paused_url = f"/api/v1/admin/feeds/{feed_id}/paused"
    paused = client.put(paused_url, json={"paused": True}, headers=admin_headers)
    assert paused.status_code == 200, paused.json
    assert paused.json["paused_at"] is not None
    poll = client.post(f"/api/v1/admin/feeds/{feed_id}/poll", headers=admin_headers)
    assert poll.status_code == 409 and "paused" in poll.json["error"]["message"]
    assert client.put(paused_url, json={"paused": "yes"}, headers=admin_headers).status_code == 400
    assert client.put(paused_url, json={"paused": False}).status_code == 401
    assert client.put("/api/v1/admin/feeds/999999/paused", json={"paused": True},
                      headers=admin_headers).status_code == 404  # fmt: skip

    resumed = client.put(paused_url, json={"paused": False}, headers=admin_headers)
    assert resumed.status_code == 200 and resumed.json["paused_at"] is None
    assert (
        client.post(f"/api/v1/admin/feeds/{feed_id}/poll", headers=admin_headers).status_code == 202
    )
