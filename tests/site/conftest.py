"""A small world for the site's tests: cities, partnerships and stories in the real services'
databases, answered by the real workers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

from services.blog.city_links import directory_version_seen
from services.blog.models import Post, PostCity
from services.blog.posts import PostData, store_posts
from shared.db import make_session_factory, session_scope
from shared.events import utcnow
from shared.routing import GENERATION_KEY
from tests.conftest import add_test_cities, wait_for_events_relayed, wait_for_search_index

PLACES = [
    ("Minneapolis", "US", 44.98, -93.26, 410_939),
    ("Najaf", "IQ", 32.0, 44.33, 482_576),
    ("Tours", "FR", 47.39, 0.69, 136_463),
    ("Uppsala", "SE", 59.86, 17.64, 133_117),
    ("Köln", "DE", 50.94, 6.96, 1_024_621),
    ("Harbin", "CN", 45.75, 126.65, 5_878_939),
]
PARTNERSHIPS = [("Minneapolis", "Najaf", 2009), ("Minneapolis", "Tours", 1991),
                ("Minneapolis", "Uppsala", None), ("Minneapolis", "Harbin", 1992)]  # fmt: skip
HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


@dataclass
class SiteWorld:
    cities: dict[str, int]
    stories: dict[str, int]
    blog_engine: object
    redis: object

    def add_stories(self, stories: list[tuple[PostData, list[int]]]) -> list[int]:
        ids = add_stories(self.blog_engine, stories)
        # Stories written straight to the database bring no event: move the blog's cache
        # generation as the relay would.
        self.redis.incr(GENERATION_KEY.format("blog"))
        return ids


def story(key: str, title: str, hours_ago: int, image: str | None = None) -> PostData:
    return PostData(
        key=f"medium:{key}", title=title, author="Ada Writer",
        url=f"https://medium.com/sister-cities/{key}",
        image=image, excerpt=f"What happened in {title}", tags=[{"slug": "exchange",
        "name": "Exchange"}], content_html=f"<p>The story of {key}.</p>", reading_minutes=3,
        published_at=utcnow() - timedelta(hours=hours_ago), updated_at=None, content_hash=key,
    )  # fmt: skip


def add_stories(engine, stories: list[tuple[PostData, list[int]]]) -> list[int]:
    """Stories as the blog stores them, already linked to their cities; their ids in order."""
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        store_posts(session, None, [data for data, _ in stories], utcnow())
        seen = directory_version_seen(session)
        ids = []
        for data, city_ids in stories:
            post = session.scalars(select(Post).where(Post.key == data.key)).one()
            post.city_ids = city_ids
            # Linked, as far as the blog knows: a round of ``link_pending_posts`` (a worker's
            # start, say) must not replace the test's cities with what the directory finds.
            post.linked_hash, post.linked_version = post.content_hash, seen
            session.add_all(PostCity(post_id=post.id, city_id=city) for city in city_ids)
            ids.append(post.id)
    return ids


@pytest.fixture
def site_world(clean_databases, stack, services, redis_client) -> SiteWorld:
    names = [place[0] for place in PLACES]
    cities = dict(zip(names, add_test_cities(clean_databases["directory"], PLACES), strict=True))
    for city, sister, since in PARTNERSHIPS:
        services.call("directory.create_partnership", cities[city], cities[sister], since)

    # Until the worker reloads its index it may still know an earlier test's cities.
    wait_for_search_index(services)
    world = SiteWorld(cities, {}, clean_databases["blog"], redis_client)
    ids = world.add_stories(
        [
            (story("najaf-visit", "A visit to Najaf", 1), [cities["Najaf"]]),
            (story("minneapolis-day", "Minneapolis day", 2, "https://miro.medium.com/a.png"),
             [cities["Minneapolis"]]),
            (story("hostile", HOSTILE, 3), [cities["Köln"]]),
        ]
    )  # fmt: skip
    world.stories = dict(zip(("najaf", "minneapolis", "hostile"), ids, strict=True))
    # The partnerships' events move the directory's cache generation when the relay sends
    # them, which may be after this fixture returns: a page the test had just cached would
    # then be stale under it (the page cache's tests failed so on a loaded CI machine).
    wait_for_events_relayed(clean_databases)
    return world
