"""Which cities a post mentions, as the directory sees it and staff corrected it, and the
post's announcement.

The blog asks ``directory.match_places_many`` with a callback (``blog.link_post_cities``) and
does not wait: a directory that is down only delays the links. Each text goes with the cities
of its feed's organisation (``Feed.city_ids``), evidence for the directory. When a post's links
are current it is announced (``blog.post_published`` the first time, ``blog.post_updated``
after a change), in the same transaction that stores them. Requests the directory never
answered are sent again by ``blog.link_pending_posts``.

Links follow the directory: each answer carries the directory's version, kept as the post's
``linked_version``, and ``directory.cities_changed`` tells the blog the version now
(``DirectorySeen``). Posts linked from an older directory are asked about again, so a town
added after its story was stored gets the story; a story whose cities come out the same is
not announced again.

A post's links are the directory's last answer (``Post.found_cities``, each city with its
evidence) with staff's corrections on top (``PostCityCorrection``: a city added or removed).
Corrections are kept apart, so they hold whenever the directory is asked again (a re-poll, an
edit of the story); a correction of an announced story announces it again as
``blog.post_updated``, which its pages, the city pages and the notifier's digests follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, true, update
from sqlalchemy.orm import Session

from services.blog.models import Base, DirectorySeen, Feed, Post, PostCity, PostCityCorrection
from services.blog.post_queries import post_summary
from services.blog.sanitizer import plain_text
from shared import audit
from shared.errors import InvalidInput, NotFound
from shared.events import publish

MATCH_TASK = "directory.match_places_many"
LINK_TASK = "blog.link_post_cities"
BATCH = 50
MAX_MATCH_CHARS = 100_000
# A request still unanswered after this long expires in the queue and is sent again.
REQUEST_EXPIRES = timedelta(minutes=15)
# Rounds of a thousand posts one ``blog.link_pending_posts`` asks about at the most.
MAX_PENDING_ROUNDS = 100
MAX_CITIES = 50
CORRECTIONS = ("add", "remove")
STAFF_EVIDENCE = "added by staff"
# Ids as the directory gives them out (a 32-bit column).
MAX_CITY_ID = 2**31 - 1


@dataclass(frozen=True)
class LinkRequest:
    texts: list[str]
    posts: list[list]  # [post id, content hash] in the order of texts
    contexts: list[list[int]]  # the cities of each text's feed's organisation


def link_requests(session: Session, post_ids: list[int], now: datetime) -> list[LinkRequest]:
    """Requests for the posts whose links are not current, in batches; marks them asked."""
    posts = session.scalars(select(Post).where(Post.id.in_(post_ids)).order_by(Post.id)).all()
    feed_ids = {post.feed_id for post in posts if post.feed_id is not None}
    organisations = dict(
        session.execute(select(Feed.id, Feed.city_ids).where(Feed.id.in_(feed_ids))).all()
    )
    seen = directory_version_seen(session)
    requests = []
    for start in range(0, len(posts), BATCH):
        batch = [post for post in posts[start : start + BATCH] if _needs_links(post, seen)]
        for post in batch:
            post.link_requested_at = now
        if batch:
            requests.append(
                LinkRequest(
                    texts=[_match_text(post) for post in batch],
                    posts=[[post.id, post.content_hash] for post in batch],
                    contexts=[list(organisations.get(post.feed_id) or []) for post in batch],
                )
            )
    return requests


def posts_awaiting_links(
    session: Session, now: datetime, limit: int = 1000, feed_id: int | None = None
) -> list[int]:
    """Posts whose links are stale (made for other content or from an older directory) and
    that were not asked about since, or whose last request has expired unanswered; only
    ``feed_id``'s when given."""
    seen = directory_version_seen(session)
    query = (
        select(Post.id)
        .where(Post.feed_id == feed_id if feed_id is not None else true())
        .where(
            or_(
                Post.linked_hash.is_(None),
                Post.linked_hash != Post.content_hash,
                func.coalesce(Post.linked_version, 0) < seen,
            )
        )
        .where(Post.hidden.is_(False))
        .where(
            or_(Post.link_requested_at.is_(None), Post.link_requested_at < now - REQUEST_EXPIRES)
        )
        .order_by(Post.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def apply_links(
    session: Session, matches: list[list[dict]], posts: list[list], version: int | None = None
) -> int:
    """Store the cities the directory (at ``version``) found and announce each post; returns
    how many were announced. Answers for content that has changed since, and answers no
    newer than the links they would replace, do nothing; a newer answer for the same content
    announces the post again only if its cities changed."""
    announced = 0
    for found, (post_id, content_hash) in zip(matches, posts, strict=True):
        post = session.get(Post, post_id)
        if post is None or post.content_hash != content_hash:
            continue
        relinked = post.linked_hash == content_hash
        if relinked and (version is None or version <= (post.linked_version or 0)):
            continue
        if post.hidden:  # hidden while the directory was asked: never announced
            continue
        before = list(post.city_ids or [])
        post.found_cities = _found(found)
        store_links(session, post)
        post.linked_hash, post.linked_version = content_hash, version
        post.link_requested_at = None  # answered: a later change may ask at once
        if relinked and post.city_ids == before:
            continue
        announce(session, post)
        announced += 1
    return announced


def directory_version_seen(session: Session) -> int:
    return session.scalar(select(DirectorySeen.version)) or 0


def cities_changed(session: Session, payloads: list[dict]) -> None:
    """``directory.cities_changed``: posts linked from an older directory are stale now."""
    version = max(int(payload.get("version") or 0) for payload in payloads)
    if session.get(DirectorySeen, 1) is None:
        session.add(DirectorySeen(id=1, version=0))
        session.flush()
    session.execute(
        update(DirectorySeen)
        .where(DirectorySeen.id == 1, DirectorySeen.version < version)
        .values(version=version)
    )


def cities_merged(session: Session, payloads: list[dict]) -> int:
    """``directory.cities_merged``: what named the duplicate names the survivor now: the
    stories' links (the directory's answers and staff's corrections) and the feeds'
    organisations. An announced story whose cities change is announced again, so its pages
    and the notifier's copy follow. Returns how many stories were moved."""
    moved = 0
    for payload in payloads:
        old, new = int(payload["from"]), int(payload["into"])
        moved += _move_links(session, old, new)
        for feed in session.scalars(select(Feed)):  # a few dozen
            if old in (feed.city_ids or []):
                feed.city_ids = sorted({new if one == old else one for one in feed.city_ids})
    return moved


def _move_links(session: Session, old: int, new: int) -> int:
    post_ids = set(session.scalars(select(PostCity.post_id).where(PostCity.city_id == old)))
    corrected = session.scalars(select(PostCityCorrection).where(PostCityCorrection.city_id == old))
    for correction in corrected:
        post_ids.add(correction.post_id)
        # The survivor's own correction, if the story has one, is the newer word on it.
        if session.get(PostCityCorrection, (correction.post_id, new)) is None:
            session.add(
                PostCityCorrection(
                    post_id=correction.post_id,
                    city_id=new,
                    action=correction.action,
                    corrected_at=correction.corrected_at,
                )
            )
        session.delete(correction)
    session.flush()
    for post in session.scalars(select(Post).where(Post.id.in_(post_ids)).order_by(Post.id)):
        before = list(post.city_ids or [])
        found: dict[int, list[str]] = {}
        for city in post.found_cities or []:
            city_id = new if city["id"] == old else city["id"]
            evidence = found.setdefault(city_id, [])
            evidence += [item for item in city["evidence"] if item not in evidence]
        post.found_cities = [{"id": city_id, "evidence": ev} for city_id, ev in found.items()]
        store_links(session, post)
        if post.announced and not post.hidden and post.city_ids != before:
            announce(session, post)
    return len(post_ids)


def store_links(session: Session, post: Post) -> None:
    """The post's links: the directory's answer, corrected by staff."""
    corrections = dict(
        session.execute(
            select(PostCityCorrection.city_id, PostCityCorrection.action).where(
                PostCityCorrection.post_id == post.id
            )
        ).all()
    )
    links: dict[int, tuple[str, list[str]]] = {}
    for city_id, action in sorted(corrections.items()):
        if action == "add":
            links[city_id] = ("staff", [STAFF_EVIDENCE])
    for city in post.found_cities or []:
        city_id = city["id"]
        if city_id in links:  # staff added what the directory found after all
            links[city_id] = ("staff", [STAFF_EVIDENCE, *city["evidence"]])
        elif corrections.get(city_id) != "remove" and len(links) < MAX_CITIES:
            links[city_id] = ("found", list(city["evidence"]))
    session.execute(delete(PostCity).where(PostCity.post_id == post.id))
    session.add_all(
        PostCity(post_id=post.id, city_id=city_id, source=source, evidence=evidence)
        for city_id, (source, evidence) in links.items()
    )
    post.city_ids = sorted(links)


def correct_city(
    session: Session, post_id: int, city_id: int, action: str, now: datetime
) -> tuple[dict, bool]:
    """Staff add a city to a story or remove one from it. Returns the post's links and
    whether the story was announced again (``blog.post_updated``)."""
    if action not in CORRECTIONS:
        raise InvalidInput("a correction adds or removes a city: action is add or remove")
    if isinstance(city_id, bool) or not isinstance(city_id, int) or not 1 <= city_id <= MAX_CITY_ID:
        raise InvalidInput(f"city_id must be a whole number from 1 to {MAX_CITY_ID}")
    post = _post(session, post_id)
    correction = session.get(PostCityCorrection, (post.id, city_id))
    if correction is None:
        correction = PostCityCorrection(post_id=post.id, city_id=city_id)
        session.add(correction)
    before = list(post.city_ids or [])
    correction.action, correction.corrected_at = action, now
    session.flush()
    store_links(session, post)
    summary = {"city_id": city_id, "cities": {"before": before, "after": post.city_ids}}
    audit.record(
        session,
        Base.metadata,
        f"story.city_{action}",
        "story",
        post.id,
        summary,
        related=[("city", city_id)],
    )
    announced_again = post.announced and not post.hidden and post.city_ids != before
    if announced_again:
        announce(session, post)
    return post_links(session, post.id), announced_again


def post_links(session: Session, post_id: int) -> dict:
    """A story's cities for staff: each with where it came from and its evidence, and the
    corrections that hold."""
    post = _post(session, post_id)
    links = session.scalars(
        select(PostCity).where(PostCity.post_id == post.id).order_by(PostCity.city_id)
    )
    corrections = session.scalars(
        select(PostCityCorrection)
        .where(PostCityCorrection.post_id == post.id)
        .order_by(PostCityCorrection.city_id)
    )
    return {
        "post_id": post.id,
        # What staff's page of the story shows beside its cities.
        "title": post.title,
        "hidden": post.hidden,
        "featured": post.featured_at is not None,
        "links_current": post.linked_hash == post.content_hash,
        "cities": [
            {"city_id": link.city_id, "source": link.source, "evidence": link.evidence or []}
            for link in links
        ],
        "corrections": [
            {
                "city_id": correction.city_id,
                "action": correction.action,
                "corrected_at": correction.corrected_at.isoformat(),
            }
            for correction in corrections
        ],
    }


def _post(session: Session, post_id: int) -> Post:
    post = session.get(Post, post_id) if 1 <= post_id <= MAX_CITY_ID else None
    if post is None:
        raise NotFound(f"no post with id {post_id}")
    return post


def _found(cities: list[dict]) -> list[dict]:
    """The directory's answer as the post keeps it: each city once, in the text's order."""
    kept: dict[int, list[str]] = {}
    for city in cities:
        kept.setdefault(int(city["id"]), [str(item) for item in city.get("evidence") or []])
    return [{"id": city_id, "evidence": evidence} for city_id, evidence in kept.items()]


def announce(session: Session, post: Post) -> None:
    """``blog.post_published`` the first time, ``blog.post_updated`` after, each numbered."""
    event = "blog.post_updated" if post.announced else "blog.post_published"
    post.announced = True
    post.revision = (post.revision or 0) + 1
    publish(session, Base.metadata, event, announcement(post))


def announcement(post: Post) -> dict:
    """What consumers learn of a post: what the API lists (the content stays here), and the
    announcement's number (events of one post may be handled out of order)."""
    return {**post_summary(post), "revision": post.revision}


def _needs_links(post: Post, directory_version: int) -> bool:
    stale = post.linked_hash != post.content_hash or (post.linked_version or 0) < directory_version
    return stale and not post.hidden


def _match_text(post: Post) -> str:
    # The title first: a city named there is the story's subject.
    return f"{post.title}\n{plain_text(post.content_html)}"[:MAX_MATCH_CHARS]
