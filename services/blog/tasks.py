"""The blog's tasks: thin wrappers that open a session, call one plain function, and send what
follows only after the commit (a rolled-back change never fires a task)."""

from __future__ import annotations

from services.blog import city_links, feeds, polling, post_queries
from services.blog.worker import app, runtime
from shared.db import session_scope
from shared.events import utcnow
from shared.routing import GENERATION_KEY

FETCH_TASK = "blog.fetch_feed"


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


@app.task(name="blog.remove_feed", shared=False)
def remove_feed(feed_id: int) -> dict:
    with session_scope(runtime.sessions) as session:
        feeds.remove_feed(session, feed_id)
    return {"deleted": feed_id}


@app.task(name="blog.request_poll", shared=False)
def request_poll(feed_id: int) -> dict:
    """Staff asked for a poll now: answer at once, fetch in the background."""
    with runtime.read_sessions() as session:
        answer = feeds.feed_to_dict(feeds.get_feed(session, feed_id))
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
    )
    if result.changed_post_ids:
        request_city_links(result.changed_post_ids)
        runtime.redis.incr(GENERATION_KEY.format("blog"))
    return {
        "feed_id": feed_id,
        "outcome": result.outcome,
        "changed": len(result.changed_post_ids),
        "error": result.error,
    }


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
        announced = city_links.apply_links(session, answer["matches"], posts)
    if announced:
        runtime.redis.incr(GENERATION_KEY.format("blog"))
    return {"announced": announced}


@app.task(name="blog.link_pending_posts", shared=False)
def link_pending_posts() -> dict:
    with runtime.read_sessions() as session:
        waiting = city_links.posts_awaiting_links(session, utcnow())
    return {"requested": request_city_links(waiting)}


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
                link=app.signature(city_links.LINK_TASK, args=[request.posts]),
                expires=city_links.REQUEST_EXPIRES.total_seconds(),
            )
    return sum(len(request.posts) for request in requests)
