"""The blog's tasks: thin wrappers that open a session, call one plain function, and send what
follows only after the commit (a rolled-back change never fires a task)."""

from __future__ import annotations

import base64
from datetime import timedelta

from services.blog import (
    city_links,
    featured_story,
    feeds,
    opml,
    polling,
    post_queries,
    story_visibility,
    websub,
)
from services.blog.worker import app, runtime
from shared.db import session_scope
from shared.errors import NotFound
from shared.events import utcnow
from shared.routing import mark_stale

FETCH_TASK = "blog.fetch_feed"
HUB_TASK = "blog.request_hub"
TEND_TASK = "blog.tend_subscriptions"


@app.task(name="blog.add_feed", shared=False)
def add_feed(url: str) -> dict:
    with session_scope(runtime.sessions) as session:
        feed = feeds.add_feed(session, url, utcnow(), runtime.settings.allow_private_feeds)
        answer = feeds.feed_to_dict(feed, 0)
    app.send_task(FETCH_TASK, args=[answer["id"]])
    return answer


@app.task(name="blog.list_feeds", shared=False)
def list_feeds() -> dict:
    with runtime.read_sessions() as session:
        return {"results": feeds.list_feeds(session)}


@app.task(name="blog.list_feeds_page", shared=False)
def list_feeds_page(after_id: int | None = None, limit: int = 25) -> dict:
    with runtime.read_sessions() as session:
        return feeds.feeds_page(session, after_id, limit)


@app.task(name="blog.remove_feed", shared=False)
def remove_feed(feed_id: int, stories: str) -> dict:
    with session_scope(runtime.sessions) as session:
        hidden = feeds.remove_feed(session, feed_id, stories, utcnow())
    if hidden:
        mark_stale(runtime.redis, "blog.posts_changed")  # cached lists still show them
    app.send_task(TEND_TASK)  # its hub subscriptions are cancelled now, not at the next tick
    return {"deleted": feed_id, "stories_hidden": hidden}


@app.task(name="blog.list_stories_for_staff", shared=False)
def list_stories_for_staff(cursor: str | None = None, limit: int = 25) -> dict:
    with runtime.read_sessions() as session:
        return story_visibility.list_for_staff(session, cursor, limit)


@app.task(name="blog.set_story_hidden", shared=False)
def set_story_hidden(post_id: int, hidden: bool) -> dict:
    with session_scope(runtime.sessions) as session:
        story, changed = story_visibility.set_hidden(session, post_id, hidden)
    if changed:
        mark_stale(runtime.redis, "blog.posts_changed")  # cached lists show it, or not
    return story


@app.task(name="blog.set_story_featured", shared=False)
def set_story_featured(post_id: int, featured: bool) -> dict:
    with session_scope(runtime.sessions) as session:
        story, changed = featured_story.set_featured(session, post_id, featured, utcnow())
    if changed:
        mark_stale(runtime.redis, "blog.posts_changed")  # the home page shows it, or not
    return story


@app.task(name="blog.get_featured_post", shared=False)
def get_featured_post() -> dict:
    with runtime.read_sessions() as session:
        return featured_story.featured_post(session)


@app.task(name="blog.export_opml", shared=False)
def export_opml() -> dict:
    with runtime.read_sessions() as session:
        return {"opml": opml.export_opml(session)}


@app.task(name="blog.import_opml", shared=False)
def import_opml(document: str) -> dict:
    with session_scope(runtime.sessions) as session:
        report = opml.import_opml(session, document, utcnow(), runtime.settings.allow_private_feeds)
    for added in report["added"]:
        app.send_task(FETCH_TASK, args=[added["id"]])
    return report


@app.task(name="blog.set_feed_paused", shared=False)
def set_feed_paused(feed_id: int, paused: bool) -> dict:
    with session_scope(runtime.sessions) as session:
        return feeds.feed_to_dict(feeds.set_paused(session, feed_id, paused, utcnow()))


@app.task(name="blog.request_poll", shared=False)
def request_poll(feed_id: int) -> dict:
    """Staff asked for a poll now: answer at once, fetch in the background."""
    with session_scope(runtime.sessions) as session:
        answer = feeds.feed_to_dict(feeds.request_poll(session, feed_id))
    app.send_task(FETCH_TASK, args=[feed_id])
    return answer


@app.task(name=FETCH_TASK, shared=False)
def fetch_feed(feed_id: int) -> dict:
    result = polling.poll_feed(
        runtime.sessions,
        feed_id,
        allow_private=runtime.settings.allow_private_feeds,
        medium_domains=runtime.settings.medium_custom_domains,
        read_sessions=runtime.read_sessions,
        push_poll_interval=_push_poll_interval(),
    )
    _stored(result.changed_post_ids, feed_id)
    for subscription_id in result.hub_requests:
        app.send_task(HUB_TASK, args=[subscription_id])
    return {
        "feed_id": feed_id,
        "outcome": result.outcome,
        "changed": len(result.changed_post_ids),
        "error": result.error,
    }


def _push_poll_interval() -> timedelta | None:
    """None while WebSub is off (no WEBSUB_BASE_URL): hubs are then ignored."""
    if runtime.settings.websub_base_url is None:
        return None
    return timedelta(seconds=runtime.settings.websub_poll_interval)


def _stored(changed_post_ids: list[int], feed_id: int | None = None) -> None:
    if changed_post_ids:
        mark_stale(runtime.redis, "blog.posts_changed")
    # With the feed's posts that wait for links: a fetch killed between storing its posts and
    # asking about them is run again, finds nothing changed, and must still ask (not leave it
    # to link_pending_posts minutes later).
    waiting = []
    if feed_id is not None:
        with runtime.read_sessions() as session:
            waiting = city_links.posts_awaiting_links(session, utcnow(), feed_id=feed_id)
    if to_link := sorted({*changed_post_ids, *waiting}):
        request_city_links(to_link)


@app.task(name=HUB_TASK, shared=False)
def request_hub(subscription_id: int) -> dict:
    """Subscribe, renew or unsubscribe at the hub, as the subscription's state says."""
    base_url = runtime.settings.websub_base_url
    if base_url is None:
        return {"sent": False}
    with runtime.read_sessions() as session:
        request = websub.hub_request(session, subscription_id, base_url)
    if request is None:
        return {"sent": False}
    problem = websub.send_hub_request(request, runtime.settings.allow_private_feeds)
    with session_scope(runtime.sessions) as session:
        websub.record_request(
            session, subscription_id, request.fields["hub.mode"], problem, utcnow()
        )
    return {"sent": True, "mode": request.fields["hub.mode"], "error": problem}


@app.task(name=TEND_TASK, shared=False)
def tend_subscriptions() -> dict:
    """Periodic: renewals before leases end, failures asked again, lapsed ones failed."""
    if runtime.settings.websub_base_url is None:
        return {"requested": 0}
    with session_scope(runtime.sessions) as session:
        due = websub.due_work(session, utcnow())
    for subscription_id in due:
        app.send_task(HUB_TASK, args=[subscription_id])
    return {"requested": len(due)}


@app.task(name="blog.verify_intent", shared=False)
def verify_intent(
    token: str, mode: str, topic: str, challenge: str, lease_seconds=None, reason=None
) -> dict:
    """A hub's GET on a callback (the gateway asks): what to answer, or NotFound (404)."""
    with session_scope(runtime.sessions) as session:
        answer = websub.verify_intent(
            session, token, mode, topic, challenge, lease_seconds, reason, utcnow()
        )
    if answer is None:
        raise NotFound("no subscription asked for this")
    return {"body": answer}


@app.task(name="blog.receive_delivery", shared=False)
def receive_delivery(token: str, body: str, content_type: str | None, signature: str | None):
    """A hub's POST on a callback (the gateway asks, ``body`` in base64): its signature is
    checked here, its stories stored by ``blog.store_delivery`` once it is answered."""
    raw = base64.b64decode(body)
    with session_scope(runtime.sessions) as session:
        subscription = websub.check_delivery(session, token, raw, signature, utcnow())
        subscription_id = subscription.id
    app.send_task("blog.store_delivery", args=[subscription_id, body, content_type])
    return {"accepted": True}


@app.task(name="blog.store_delivery", shared=False)
def store_delivery(subscription_id: int, body: str, content_type: str | None) -> dict:
    result = polling.store_delivery(
        runtime.sessions, subscription_id, base64.b64decode(body), content_type
    )
    _stored(result.changed_post_ids)
    return {"outcome": result.outcome, "changed": len(result.changed_post_ids)}


@app.task(name="blog.schedule_fetches", shared=False, bind=True)
def schedule_fetches(task) -> dict:
    with session_scope(runtime.sessions) as session:
        due = polling.claim_due_feeds(session, utcnow(), claimant=task.request.id)
    for feed_id in due:
        app.send_task(FETCH_TASK, args=[feed_id])
    return {"scheduled": len(due)}


@app.task(name=city_links.LINK_TASK, shared=False)
def link_post_cities(answer: dict, posts: list[list]) -> dict:
    with session_scope(runtime.sessions) as session:
        announced = city_links.apply_links(session, answer["matches"], posts, answer.get("version"))
    if announced:
        mark_stale(runtime.redis, "blog.posts_changed")
    return {"announced": announced}


@app.task(name="blog.get_post_cities", shared=False)
def get_post_cities(post_id: int) -> dict:
    with runtime.read_sessions() as session:
        return city_links.post_links(session, post_id)


@app.task(name="blog.correct_post_city", shared=False)
def correct_post_city(post_id: int, city_id: int, action: str) -> dict:
    """Staff add a city to a story or remove one; the story's pages and digests follow."""
    with session_scope(runtime.sessions) as session:
        links, _announced = city_links.correct_city(session, post_id, city_id, action, utcnow())
    mark_stale(runtime.redis, "blog.posts_changed")
    return links


@app.task(name="blog.set_feed_cities", shared=False)
def set_feed_cities(feed_id: int, city_ids: list[int]) -> dict:
    """The cities of the feed's organisation; its stories' links are worked out again."""
    with session_scope(runtime.sessions) as session:
        answer, post_ids = feeds.set_feed_cities(session, feed_id, city_ids)
    request_city_links(post_ids)
    return answer


@app.task(name="blog.link_pending_posts", shared=False)
def link_pending_posts() -> dict:
    """Ask about every post whose links are stale, a thousand at a time (each round marks its
    posts asked, so the next finds the rest)."""
    requested = 0
    for _ in range(city_links.MAX_PENDING_ROUNDS):
        with runtime.read_sessions() as session:
            waiting = city_links.posts_awaiting_links(session, utcnow())
        asked = request_city_links(waiting) if waiting else 0
        if not asked:
            break
        requested += asked
    return {"requested": requested}


@app.task(name="blog.list_posts", shared=False)
def list_posts(
    city_id: int | None = None,
    tag: str | None = None,
    feed_id: int | None = None,
    cursor: str | None = None,
    limit: int = 20,
    city_ids: list[int] | None = None,
) -> dict:
    with runtime.read_sessions() as session:
        return post_queries.list_posts(session, city_id, tag, feed_id, cursor, limit, city_ids)


@app.task(name="blog.get_post", shared=False)
def get_post(post_id: int) -> dict:
    with runtime.read_sessions() as session:
        return post_queries.get_post(session, post_id)


def request_city_links(post_ids: list[int]) -> int:
    """Ask the directory which cities these posts mention; the answer comes back as
    ``blog.link_post_cities``. Returns how many posts were asked about.

    The posts are marked asked only once their requests are in the queue (the marks commit
    after the sends): a send that fails (Redis away) leaves them unmarked, and
    ``blog.link_pending_posts`` asks again at its next run instead of waiting out
    ``REQUEST_EXPIRES``. A commit that fails after the sends only means asking twice; the
    second answer changes nothing."""
    with session_scope(runtime.sessions) as session:
        requests = city_links.link_requests(session, post_ids, utcnow())
        for request in requests:
            app.send_task(
                city_links.MATCH_TASK,
                args=[request.texts],
                kwargs={"contexts": request.contexts},
                link=app.signature(city_links.LINK_TASK, args=[request.posts]),
                expires=city_links.REQUEST_EXPIRES.total_seconds(),
            )
    return sum(len(request.posts) for request in requests)
