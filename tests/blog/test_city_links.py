"""Linking posts to the cities the directory finds in them, and announcing each post once."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from services.blog import city_links, feeds
from services.blog.models import Post, PostCity, outbox_events
from services.blog.posts import PostData, store_posts
from shared.db import session_scope
from shared.errors import InvalidInput, NotFound
from shared.events import utcnow


def a_post(key: str, title: str, html: str, digest: str) -> PostData:
    return PostData(
        key=key, title=title, author="A", url=f"https://example.org/{key}", image=None,
        excerpt="e", content_html=html, tags=[{"slug": "twinning", "name": "Twinning"}],
        reading_minutes=1, published_at=utcnow(), updated_at=None, content_hash=digest,
    )  # fmt: skip


def events(sessions) -> list[tuple[str, dict]]:
    with sessions() as session:
        rows = session.execute(select(outbox_events).order_by(outbox_events.c.id)).mappings()
        return [(row["event_type"], row["payload"]) for row in rows]


def test_a_post_is_announced_once_its_cities_are_known(blog_sessions):
    now = utcnow()
    with session_scope(blog_sessions) as session:
        (post_id,) = store_posts(
            session, None, [a_post("k", "Minneapolis", "<p>Najaf</p>", "h1")], now
        )
        (request,) = city_links.link_requests(session, [post_id], now)
    assert request.texts == ["Minneapolis\nNajaf"] and request.posts == [[post_id, "h1"]]
    assert events(blog_sessions) == []  # not announced before its links are known

    answer = [[{"id": 7, "name": "Minneapolis"}, {"id": 9, "name": "Najaf"}]]
    with session_scope(blog_sessions) as session:
        assert city_links.apply_links(session, answer, request.posts) == 1
    with session_scope(blog_sessions) as session:  # the same answer delivered twice
        assert city_links.apply_links(session, answer, request.posts) == 0

    ((kind, payload),) = events(blog_sessions)
    assert kind == "blog.post_published"
    assert payload["id"] == post_id and payload["city_ids"] == [7, 9]
    assert (
        payload["tags"] == [{"slug": "twinning", "name": "Twinning"}]
        and payload["url"] == "https://example.org/k"
    )
    with blog_sessions() as session:
        assert sorted(session.scalars(select(PostCity.city_id))) == [7, 9]


def test_an_edit_is_announced_as_an_update_and_stale_answers_are_ignored(blog_sessions):
    now = utcnow()
    with session_scope(blog_sessions) as session:
        (post_id,) = store_posts(session, None, [a_post("k", "Lyon", "<p>x</p>", "h1")], now)
        city_links.apply_links(session, [[{"id": 1}]], [[post_id, "h1"]])
    with session_scope(blog_sessions) as session:
        store_posts(session, None, [a_post("k", "Lyon and Birmingham", "<p>x</p>", "h2")], now)
        # An answer about the old content arrives late: it must not overwrite anything.
        assert city_links.apply_links(session, [[{"id": 99}]], [[post_id, "h1"]]) == 0
        assert city_links.apply_links(session, [[{"id": 1}, {"id": 2}]], [[post_id, "h2"]]) == 1
    kinds = [kind for kind, _payload in events(blog_sessions)]
    assert kinds == ["blog.post_published", "blog.post_updated"]
    assert events(blog_sessions)[-1][1]["city_ids"] == [1, 2]


def test_unanswered_requests_are_asked_again_after_they_expire(blog_sessions):
    now = utcnow()
    with session_scope(blog_sessions) as session:
        ids = store_posts(
            session, None, [a_post("a", "A", "", "h"), a_post("b", "B", "", "h")], now
        )
        city_links.link_requests(session, ids, now)
    with blog_sessions() as session:
        assert city_links.posts_awaiting_links(session, now) == []
        later = now + city_links.REQUEST_EXPIRES * 2
        assert city_links.posts_awaiting_links(session, later) == sorted(ids)
    with session_scope(blog_sessions) as session:
        city_links.apply_links(session, [[], []], [[ids[0], "h"], [ids[1], "h"]])
    with blog_sessions() as session:
        assert city_links.posts_awaiting_links(session, later) == []
        assert session.scalar(select(Post.city_ids).where(Post.id == ids[0])) == []


def test_posts_linked_from_an_older_directory_are_asked_about_again(blog_sessions):
    """A town added after its story: ``directory.cities_changed`` makes the links stale, the
    newer answer adds the town and announces the story again; an answer that leaves the
    cities as they were announces nothing, and an older one changes nothing."""
    now = utcnow()
    with session_scope(blog_sessions) as session:
        (post_id,) = store_posts(session, None, [a_post("k", "Excelsior", "", "h")], now)
        (request,) = city_links.link_requests(session, [post_id], now)
        city_links.apply_links(session, [[]], request.posts, version=4)
    with session_scope(blog_sessions) as session:
        assert city_links.posts_awaiting_links(session, now) == []
        city_links.cities_changed(session, [{"version": 6}, {"version": 5}])
    with session_scope(blog_sessions) as session:
        assert city_links.posts_awaiting_links(session, now) == [post_id]
        (request,) = city_links.link_requests(session, [post_id], now)
        assert city_links.apply_links(session, [[{"id": 3}]], request.posts, version=3) == 0
        assert city_links.apply_links(session, [[{"id": 3}]], request.posts, version=6) == 1
        assert city_links.posts_awaiting_links(session, now) == []
        city_links.cities_changed(session, [{"version": 5}])  # late: the version stays 6
        assert city_links.directory_version_seen(session) == 6
        city_links.cities_changed(session, [{"version": 8}])
    with session_scope(blog_sessions) as session:
        (request,) = city_links.link_requests(session, [post_id], now)
        assert city_links.apply_links(session, [[{"id": 3}]], request.posts, version=8) == 0
        assert session.get(Post, post_id).linked_version == 8
    kinds = [(kind, p["city_ids"], p["revision"]) for kind, p in events(blog_sessions)]
    assert kinds == [("blog.post_published", [], 1), ("blog.post_updated", [3], 2)]


def test_a_feeds_posts_never_asked_about_wait_for_its_next_fetch(blog_sessions):
    """A fetch killed between storing its posts and asking about them is run again and finds
    nothing changed: it asks about the feed's posts that wait (tasks.fetch_feed), not only the
    changed ones."""
    now = utcnow()
    with session_scope(blog_sessions) as session:
        ours = feeds.add_feed(session, "https://example.org/ours.xml", now, allow_private=True)
        theirs = feeds.add_feed(session, "https://example.org/theirs.xml", now, True)
        session.flush()
        (waiting,) = store_posts(session, ours.id, [a_post("a", "Lyon", "<p>x</p>", "h1")], now)
        store_posts(session, theirs.id, [a_post("b", "Turin", "<p>y</p>", "h2")], now)
        (asked,) = store_posts(session, ours.id, [a_post("c", "Kyiv", "<p>z</p>", "h3")], now)
        city_links.link_requests(session, [asked], now)
        ours_id = ours.id
    with blog_sessions() as session:
        assert city_links.posts_awaiting_links(session, now, feed_id=ours_id) == [waiting]
        later = now + city_links.REQUEST_EXPIRES + timedelta(seconds=1)
        assert city_links.posts_awaiting_links(session, later, feed_id=ours_id) == [
            waiting,
            asked,
        ]


def _linked(sessions, post_id: int) -> dict:
    with sessions() as session:
        return city_links.post_links(session, post_id)


def test_each_link_keeps_the_evidence_the_directory_gave(blog_sessions):
    now = utcnow()
    belfast = {
        "id": 5,
        "evidence": ["'Belfast' — sister of Nashville, mentioned in the same story"],
    }
    with session_scope(blog_sessions) as session:
        (post_id,) = store_posts(session, None, [a_post("k", "T", "<p>x</p>", "h1")], now)
        city_links.apply_links(session, [[{"id": 3, "evidence": ["'in Nashville'"]}, belfast]],
                               [[post_id, "h1"]])  # fmt: skip
    linked = _linked(blog_sessions, post_id)
    assert linked["links_current"] is True and linked["corrections"] == []
    assert linked["cities"] == [
        {"city_id": 3, "source": "found", "evidence": ["'in Nashville'"]},
        {"city_id": 5, "source": "found", "evidence": belfast["evidence"]},
    ]


def test_staff_corrections_hold_when_the_story_is_linked_again_after_an_edit(blog_sessions):
    now = utcnow()
    with session_scope(blog_sessions) as session:
        (post_id,) = store_posts(session, None, [a_post("k", "T", "<p>x</p>", "h1")], now)
        city_links.apply_links(session, [[{"id": 1}, {"id": 2}]], [[post_id, "h1"]])
    with session_scope(blog_sessions) as session:
        _links, announced = city_links.correct_city(session, post_id, 2, "remove", now)
        assert announced
        linked, announced = city_links.correct_city(session, post_id, 8, "add", now)
        assert announced
    assert [(c["city_id"], c["source"]) for c in linked["cities"]] == [(1, "found"), (8, "staff")]
    assert [(c["city_id"], c["action"]) for c in linked["corrections"]] == [
        (2, "remove"),
        (8, "add"),
    ]
    # The story is edited: the directory reads it again and finds Lyon's partner once more.
    with session_scope(blog_sessions) as session:
        store_posts(session, None, [a_post("k", "T again", "<p>x</p>", "h2")], now)
        city_links.apply_links(session, [[{"id": 1}, {"id": 2}, {"id": 3}]], [[post_id, "h2"]])
    linked = _linked(blog_sessions, post_id)
    assert [c["city_id"] for c in linked["cities"]] == [1, 3, 8]
    payloads = [(kind, payload["city_ids"]) for kind, payload in events(blog_sessions)]
    assert payloads == [
        ("blog.post_published", [1, 2]),
        ("blog.post_updated", [1]),
        ("blog.post_updated", [1, 8]),
        ("blog.post_updated", [1, 3, 8]),
    ]
    with blog_sessions() as session:
        assert sorted(session.scalars(select(PostCity.city_id))) == [1, 3, 8]


def test_a_correction_that_changes_nothing_announces_nothing(blog_sessions):
    now = utcnow()
    with session_scope(blog_sessions) as session:
        (post_id,) = store_posts(session, None, [a_post("k", "T", "<p>x</p>", "h1")], now)
        city_links.apply_links(session, [[{"id": 1}]], [[post_id, "h1"]])
    with session_scope(blog_sessions) as session:
        linked, announced = city_links.correct_city(session, post_id, 1, "add", now)
    assert not announced and len(events(blog_sessions)) == 1
    # Staff confirmed what the directory found: the link is theirs now, with both reasons.
    assert linked["cities"] == [{"city_id": 1, "source": "staff", "evidence": ["added by staff"]}]


def test_a_correction_before_the_links_are_known_waits_for_them_and_announces_nothing(
    blog_sessions,
):
    now = utcnow()
    with session_scope(blog_sessions) as session:
        (post_id,) = store_posts(session, None, [a_post("k", "T", "<p>x</p>", "h1")], now)
        city_links.correct_city(session, post_id, 4, "remove", now)
    assert events(blog_sessions) == []
    with session_scope(blog_sessions) as session:
        city_links.apply_links(session, [[{"id": 4}, {"id": 6}]], [[post_id, "h1"]])
    ((kind, payload),) = events(blog_sessions)
    assert (kind, payload["city_ids"]) == ("blog.post_published", [6])


def test_corrections_that_no_one_could_mean_are_refused(blog_sessions):
    now = utcnow()
    with session_scope(blog_sessions) as session:
        (post_id,) = store_posts(session, None, [a_post("k", "T", "<p>x</p>", "h1")], now)
    for post, city, action, error in [
        (post_id, 1, "toggle", InvalidInput),
        (post_id, 0, "add", InvalidInput),
        (post_id, 2**40, "add", InvalidInput),
        (post_id, True, "add", InvalidInput),
        (post_id + 1000, 1, "add", NotFound),
        (2**40, 1, "add", NotFound),
    ]:
        with session_scope(blog_sessions) as session, pytest.raises(error):
            city_links.correct_city(session, post, city, action, now)


def test_the_cities_of_a_feeds_organisation_go_with_its_stories_to_the_directory(blog_sessions):
    now = utcnow()
    with session_scope(blog_sessions) as session:
        feed = feeds.add_feed(session, "https://medium.com/nashville-sister-cities", now, False)
        (post_id,) = store_posts(session, feed.id, [a_post("k", "T", "<p>x</p>", "h1")], now)
        city_links.apply_links(session, [[{"id": 1}]], [[post_id, "h1"]])
    with session_scope(blog_sessions) as session:
        answer, stale = feeds.set_feed_cities(session, feed.id, [4644585, 4644585])
    assert answer["city_ids"] == [4644585] and stale == [post_id]
    with session_scope(blog_sessions) as session:
        (request,) = city_links.link_requests(session, stale, now)
    assert request.contexts == [[4644585]] and request.posts == [[post_id, "h1"]]
    with session_scope(blog_sessions) as session:  # the same cities again: nothing to redo
        assert feeds.set_feed_cities(session, feed.id, [4644585])[1] == []
        with pytest.raises(InvalidInput):
            feeds.set_feed_cities(session, feed.id, ["4644585"])
        with pytest.raises(NotFound):
            feeds.set_feed_cities(session, 2**40, [])


def test_a_merged_city_s_links_and_corrections_move_to_the_survivor(blog_sessions):
    """``directory.cities_merged``: 9 into 7. A story linked to both keeps one link with both
    evidences; a staff correction moves; an announced story is announced again."""
    now = utcnow()
    with session_scope(blog_sessions) as session:
        (post_id,) = store_posts(session, None, [a_post("k", "Bombay", "<p>x</p>", "h1")], now)
        (request,) = city_links.link_requests(session, [post_id], now)
        answer = [[{"id": 9, "evidence": ["'Bombay'"]}, {"id": 7, "evidence": ["'Mumbai'"]}]]
        city_links.apply_links(session, answer, request.posts, version=1)
        city_links.correct_city(session, post_id, 9, "add", now)
    with session_scope(blog_sessions) as session:
        assert city_links.cities_merged(session, [{"from": 9, "into": 7}]) == 1
    with blog_sessions() as session:
        links = city_links.post_links(session, post_id)
    assert [(link["city_id"], link["source"]) for link in links["cities"]] == [(7, "staff")]
    assert links["cities"][0]["evidence"] == ["added by staff", "'Bombay'", "'Mumbai'"]
    assert [(c["city_id"], c["action"]) for c in links["corrections"]] == [(7, "add")]
    kinds = [kind for kind, _payload in events(blog_sessions)]
    assert kinds == ["blog.post_published", "blog.post_updated"]
    assert events(blog_sessions)[-1][1]["city_ids"] == [7]
