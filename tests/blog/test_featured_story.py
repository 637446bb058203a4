"""One story featured at a time: featuring another takes the mark from the first; a hidden
story is never featured; each change is on the audit log."""

import pytest
from sqlalchemy import select

from services.blog import featured_story, story_visibility
from services.blog.city_links import announce
from services.blog.models import Post, audit_log
from services.blog.posts import store_posts
from shared.db import session_scope
from shared.errors import Conflict, InvalidInput, NotFound
from shared.events import utcnow
from tests.blog.test_city_links import a_post, events


@pytest.fixture
def two_posts(blog_sessions) -> list[int]:
    made = []
    for key, title in (("a", "Kuopio visits"), ("b", "Lyon")):
        with session_scope(blog_sessions) as session:
            made += store_posts(session, None, [a_post(key, title, "<p>x</p>", key)], utcnow())
    return made


def featured(sessions):
    with sessions() as session:
        post = featured_story.featured_post(session)["post"]
    return post and post["id"]


def test_featuring_another_story_unfeatures_the_first(blog_sessions, two_posts):
    first, second = two_posts
    assert featured(blog_sessions) is None
    with session_scope(blog_sessions) as session:
        story, changed = featured_story.set_featured(session, first, True, utcnow())
    assert changed and story["featured"] and featured(blog_sessions) == first
    with session_scope(blog_sessions) as session:
        _story, changed = featured_story.set_featured(session, first, True, utcnow())
    assert not changed  # featured already: nothing on record
    with session_scope(blog_sessions) as session:
        featured_story.set_featured(session, second, True, utcnow())
    assert featured(blog_sessions) == second
    with blog_sessions() as session:
        listed = story_visibility.list_for_staff(session)["results"]
        entries = session.execute(select(audit_log).order_by(audit_log.c.id)).mappings().all()
    assert {post["id"]: post["featured"] for post in listed} == {first: False, second: True}
    assert [(entry["action"], entry["object_id"]) for entry in entries] == [
        ("story.featured", str(first)),
        ("story.featured", str(second)),
    ]
    assert entries[1]["summary"]["unfeatured"] == [first]
    with session_scope(blog_sessions) as session:
        _story, changed = featured_story.set_featured(session, second, False, utcnow())
    assert changed and featured(blog_sessions) is None


def test_a_hidden_story_is_never_featured(blog_sessions, two_posts):
    first, second = two_posts
    with session_scope(blog_sessions) as session:
        featured_story.set_featured(session, first, True, utcnow())
        story_visibility.set_hidden(session, first, True)
    assert featured(blog_sessions) is None
    with pytest.raises(Conflict), session_scope(blog_sessions) as session:
        featured_story.set_featured(session, first, True, utcnow())
    with pytest.raises(NotFound), session_scope(blog_sessions) as session:
        featured_story.set_featured(session, 999_999, True, utcnow())
    with pytest.raises(InvalidInput), session_scope(blog_sessions) as session:
        featured_story.set_featured(session, second, "yes", utcnow())


def test_hiding_and_showing_an_announced_story_are_numbered_announcements(blog_sessions, two_posts):
    first, second = two_posts
    with session_scope(blog_sessions) as session:
        post = session.get(Post, first)
        announce(session, post)  # announced: its first revision
    with session_scope(blog_sessions) as session:
        story_visibility.set_hidden(session, first, True)
    with session_scope(blog_sessions) as session:
        story_visibility.set_hidden(session, first, False)
    with session_scope(blog_sessions) as session:
        story_visibility.set_hidden(session, second, True)  # never announced: nothing to say
    published = events(blog_sessions)
    assert [(kind, payload.get("revision")) for kind, payload in published] == [
        ("blog.post_published", 1),
        ("blog.post_hidden", 2),
        ("blog.post_shown", 3),
    ]
    shown = published[-1][1]
    assert shown["id"] == first and shown["title"] == "Kuopio visits"  # its announcement
