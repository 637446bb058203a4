"""How the notifier applies the blog's events to its copy of the stories."""

from sqlalchemy import select

from services.notifier.digests import StoryPool
from services.notifier.event_handlers import HANDLERS
from services.notifier.models import HiddenStory, Story
from shared.db import session_scope
from shared.events import utcnow


def story(post_id: int) -> dict:
    return {
        "id": post_id, "title": f"Story {post_id}", "excerpt": "Delegates met…",
        "url": f"https://news.example.org/{post_id}", "source_name": "news.example.org",
        "image": None, "published_at": "2026-11-27T10:00:00+00:00", "city_ids": [7],
    }  # fmt: skip


def handle(sessions, event_type: str, payload: dict) -> None:
    with session_scope(sessions) as session:
        HANDLERS[event_type](session, [payload])


def pooled_ids(sessions) -> list[int]:
    with sessions() as session:
        pool = StoryPool(session, utcnow().replace(year=2000), utcnow(), [])
        return [view.post_id for view in pool.digest_for([], utcnow().replace(year=2000)).stories]


def test_a_hidden_story_leaves_every_digest_not_yet_sent(notifier_sessions):
    handle(notifier_sessions, "blog.post_published", story(1))
    handle(notifier_sessions, "blog.post_published", story(2))
    assert sorted(pooled_ids(notifier_sessions)) == [1, 2]
    handle(notifier_sessions, "blog.post_hidden", {"id": 1})
    handle(notifier_sessions, "blog.post_hidden", {"id": 1})  # delivered twice: no harm
    assert pooled_ids(notifier_sessions) == [2]


def test_an_announcement_handled_after_the_story_was_hidden_does_not_bring_it_back(
    notifier_sessions,
):
    """Events of one story may be handled out of order (two worker threads)."""
    handle(notifier_sessions, "blog.post_hidden", {"id": 3})
    handle(notifier_sessions, "blog.post_published", story(3))
    handle(notifier_sessions, "blog.post_updated", story(3))
    with notifier_sessions() as session:
        assert session.scalars(select(Story.post_id)).all() == []
        assert session.scalars(select(HiddenStory.post_id)).all() == [3]


def test_a_batch_that_hides_and_announces_one_story_keeps_it_hidden(notifier_sessions):
    with session_scope(notifier_sessions) as session:
        HANDLERS["blog.post_published"](session, [story(4)])
        HANDLERS["blog.post_hidden"](session, [{"id": 4}, {"id": 4}])
        HANDLERS["blog.post_updated"](session, [story(4)])
    assert pooled_ids(notifier_sessions) == []


def test_an_older_announcement_handled_late_changes_nothing(notifier_sessions):
    """Two announcements of one story handled out of order (staff removed a city, then added
    another): the copy keeps the newer, whatever order they come in."""
    handle(notifier_sessions, "blog.post_published", {**story(5), "revision": 1})
    handle(notifier_sessions, "blog.post_updated", {**story(5), "city_ids": [9], "revision": 3})
    handle(notifier_sessions, "blog.post_updated", {**story(5), "city_ids": [], "revision": 2})
    handle(notifier_sessions, "blog.post_updated", {**story(5), "city_ids": [8], "revision": 3})
    with notifier_sessions() as session:
        copy = session.get(Story, 5)
        assert (copy.city_ids, copy.revision) == ([9], 3)
    handle(notifier_sessions, "blog.post_updated", {**story(5), "city_ids": [8], "revision": 4})
    with notifier_sessions() as session:
        assert session.get(Story, 5).city_ids == [8]


def test_followers_of_a_merged_city_follow_the_survivor(notifier_sessions):
    """``directory.cities_merged``: 12 into 7; 112 and 1200 only look alike as text."""
    from services.notifier.models import PartnershipNews, Subscriber

    now = utcnow()
    with session_scope(notifier_sessions) as session:
        for email, cities in (
            ("a@x.org", [12, 30]),
            ("b@x.org", [7, 12]),
            ("c@x.org", [112, 1200]),
        ):
            session.add(Subscriber(email=email, city_ids=cities, created_at=now))
        session.add(PartnershipNews(partnership_id=1, city_ids=[30, 12], received_at=now))
        session.add(PartnershipNews(partnership_id=2, city_ids=[12, 7], received_at=now))
    handle(notifier_sessions, "directory.cities_merged", {"from": 12, "into": 7})
    with notifier_sessions() as session:
        follows = dict(session.execute(select(Subscriber.email, Subscriber.city_ids)).all())
        news = dict(
            session.execute(select(PartnershipNews.partnership_id, PartnershipNews.city_ids)).all()
        )
    assert follows == {"a@x.org": [7, 30], "b@x.org": [7], "c@x.org": [112, 1200]}
    assert news == {1: [30, 7]}  # the partnership between the two is no more


def test_a_city_staff_renamed_is_named_so_in_digests(notifier_sessions):
    from services.notifier.models import KnownCity

    handle(notifier_sessions, "directory.cities_changed", {"created": 3, "version": 4})  # import
    handle(
        notifier_sessions,
        "directory.cities_changed",
        {"updated": 1, "version": 5, "cities": [{"id": 9, "name": "Mumbai", "country_code": "IN"}]},
    )
    with notifier_sessions() as session:
        assert session.execute(select(KnownCity.city_id, KnownCity.name)).all() == [(9, "Mumbai")]


def received_at(sessions, post_id: int):
    with sessions() as session:
        copy = session.get(Story, post_id)
        return copy and copy.received_at


def test_a_story_shown_again_returns_to_the_digests_not_yet_sent_as_it_was(notifier_sessions):
    handle(notifier_sessions, "blog.post_published", {**story(6), "revision": 1})
    first_received = received_at(notifier_sessions, 6)
    handle(notifier_sessions, "blog.post_hidden", {"id": 6, "revision": 2})
    assert pooled_ids(notifier_sessions) == []
    shown = {**story(6), "title": "Story 6, corrected", "revision": 3}
    handle(notifier_sessions, "blog.post_shown", shown)
    handle(notifier_sessions, "blog.post_shown", shown)  # delivered twice: no harm
    assert pooled_ids(notifier_sessions) == [6]
    # Not news again: a digest sent since it was first received does not take it back.
    assert received_at(notifier_sessions, 6) == first_received
    with notifier_sessions() as session:
        assert session.get(Story, 6).title == "Story 6, corrected"
        assert session.get(HiddenStory, 6) is None


def test_a_story_hidden_before_the_notifier_heard_of_it_is_news_when_shown(notifier_sessions):
    handle(notifier_sessions, "blog.post_hidden", {"id": 7, "revision": 2})
    handle(notifier_sessions, "blog.post_published", {**story(7), "revision": 1})  # late
    assert pooled_ids(notifier_sessions) == []
    handle(notifier_sessions, "blog.post_shown", {**story(7), "revision": 3})
    assert pooled_ids(notifier_sessions) == [7]


def test_hides_and_shows_handled_out_of_order_keep_the_last(notifier_sessions):
    """Two worker threads may handle a story's events in either order; the blog numbers
    them, and the copy ends as the last one says."""
    # Hidden (2) then shown (3), the show handled first: shown.
    handle(notifier_sessions, "blog.post_published", {**story(8), "revision": 1})
    handle(notifier_sessions, "blog.post_shown", {**story(8), "revision": 3})
    handle(notifier_sessions, "blog.post_hidden", {"id": 8, "revision": 2})
    # Hidden (2), shown (3), hidden again (4), the second hide handled before the show: hidden.
    handle(notifier_sessions, "blog.post_published", {**story(9), "revision": 1})
    handle(notifier_sessions, "blog.post_hidden", {"id": 9, "revision": 2})
    handle(notifier_sessions, "blog.post_hidden", {"id": 9, "revision": 4})
    handle(notifier_sessions, "blog.post_shown", {**story(9), "revision": 3})
    # Hidden (2), shown (3), corrected (4), the correction handled before the show: corrected.
    handle(notifier_sessions, "blog.post_published", {**story(10), "revision": 1})
    handle(notifier_sessions, "blog.post_hidden", {"id": 10, "revision": 2})
    handle(notifier_sessions, "blog.post_updated", {**story(10), "city_ids": [8], "revision": 4})
    handle(notifier_sessions, "blog.post_shown", {**story(10), "revision": 3})
    assert sorted(pooled_ids(notifier_sessions)) == [8, 10]
    with notifier_sessions() as session:
        assert session.get(Story, 10).city_ids == [8]
        assert session.scalars(select(HiddenStory.post_id)).all() == [9]
