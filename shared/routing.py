"""The one routing table: which queue each task goes to, and which services hear each event.

Task names are ``<service>.<verb>_<noun>``; the prefix names the service, so a task is always
delivered to a worker of the service that owns it. Each service has two lanes, each its own
queue consumed by worker processes of its own: the interactive lane (``<service>``) holds the
calls a visitor waits for, the background lane (``<service>.background``) everything else
(events, imports, digests, polls), so no visitor's call waits behind background work
(docs/architecture.md says why lanes are processes and not priorities).
"""

from __future__ import annotations

SERVICES: tuple[str, ...] = ("directory", "blog", "notifier", "staff")
INTERACTIVE, BACKGROUND = "interactive", "background"
LANES: tuple[str, ...] = (INTERACTIVE, BACKGROUND)

# Every service's tasks of the event ledger (shared.runtime) and its background lane's ping
# (shared.celery_app).
_COMMON_BACKGROUND = ("handle_events", "handle_event", "purge_events", "ping_background")
# The background lane's tasks; every other task is interactive. A task the gateway calls
# through shared.rpc is interactive unless it takes minutes (staff's imports).
BACKGROUND_TASKS: frozenset[str] = frozenset(
    {f"{service}.{verb}" for service in SERVICES for verb in _COMMON_BACKGROUND}
    | {
        "directory.import_partnerships",
        # The blog's linking of stories to cities, asked when a feed is polled.
        "directory.match_places",
        "directory.match_places_many",
        "blog.fetch_feed",
        "blog.schedule_fetches",
        "blog.link_post_cities",
        "blog.link_pending_posts",
        # WebSub: talking to hubs, and storing what a hub delivered once the gateway answered.
        "blog.request_hub",
        "blog.tend_subscriptions",
        "blog.store_delivery",
        "notifier.schedule_digests",
        "notifier.send_digests",
        "notifier.send_confirmation",
        "notifier.send_link_mail",
        "notifier.send_sign_in_link",
        "notifier.store_city_names",
        "notifier.unsubscribe_by_mail",
        "notifier.record_bounce",
        "notifier.resend_unconfirmed_digests",
        "notifier.send_campaign",
        "notifier.send_campaign_batch",
        "notifier.send_campaign_test",
        "notifier.send_due_campaigns",  # staff wait for it, but it sends mail for minutes
        "staff.purge_attempts",
    }
)

# Background work a person is waiting for at their mailbox (a confirmation, a link, a test
# copy): a queue of its own in the background lane (``awaited_queue``). The lane's workers wait
# on both of its queues and kombu's Redis transport takes them in turn (the queue that just gave
# a message goes to the back), so such a mail waits for a task or two of the lane, never for a
# whole digest or campaign send, or an import's events, queued before it.
AWAITED_TASKS: frozenset[str] = frozenset(
    {
        "notifier.send_confirmation",
        "notifier.send_link_mail",
        "notifier.send_sign_in_link",
        "notifier.send_campaign_test",
    }
)
# event type -> the services whose ``<service>.handle_events`` task receives it (in batches)
EVENT_ROUTES: dict[str, tuple[str, ...]] = {
    "directory.partnership_changed": ("notifier",),
    "blog.post_published": ("notifier",),
    "blog.post_updated": ("notifier",),
    # Staff hid an announced story: it leaves the notifier's copy before any digest takes it.
    "blog.post_hidden": ("notifier",),
    # Shown again: back in the digests not yet sent when it was hidden.
    "blog.post_shown": ("notifier",),
    # Stories are linked again from the new directory; a renamed city's name is the
    # notifier's too.
    "directory.cities_changed": ("blog", "notifier"),
    # Two records of one place made one: stories' links and followers move to the survivor.
    "directory.cities_merged": ("blog", "notifier"),
    # A campaign sent: only the site's pages change (the archive and the home page).
    "notifier.campaign_sent": (),
}


# Every change that makes the gateway's cached answers stale -> the cache generation it moves
# (a service's name: the gateway caches a task's answers in its service's generation). The
# relay moves it when it delivers an event; a change that is no event is announced by the
# service that made it, with ``mark_stale``.
CACHE_GENERATIONS: dict[str, str] = {
    "directory.partnership_changed": "directory",
    "directory.cities_changed": "directory",
    # A worker's search index reloaded: answers taken from the old index are stale, whenever
    # the event that caused the reload was delivered.
    "directory.index_reloaded": "directory",
    "blog.post_published": "blog",
    "blog.post_updated": "blog",
    "blog.post_hidden": "blog",
    "blog.post_shown": "blog",
    # Stories stored, linked to their cities, or hidden with their feed: the lists show them
    # before any announcement (and hidden ones never have one).
    "blog.posts_changed": "blog",
    "notifier.campaign_sent": "notifier",
}
GENERATION_KEY = "sistercities:cache-generation:{}"


def mark_stale(client, change: str) -> None:
    """The gateway's cached answers that ``change`` (a key of ``CACHE_GENERATIONS``) affects
    are stale from now on. ``client``: a Redis client."""
    client.incr(GENERATION_KEY.format(CACHE_GENERATIONS[change]))


def cache_generation_of(task_name: str) -> str:
    """The generation the gateway caches a task's answers in: its service's."""
    return service_of(task_name)


def lane_queue(service: str, lane: str) -> str:
    """The Redis list (kombu's queue) a service's lane consumes."""
    if lane not in LANES:
        raise ValueError(f"lane {lane!r} is not one of {LANES}")
    return service if lane == INTERACTIVE else f"{service}.{BACKGROUND}"


def awaited_queue(service: str) -> str | None:
    """The background lane's queue for mail someone waits for, if the service sends any."""
    if any(service_of(task) == service for task in AWAITED_TASKS):
        return f"{lane_queue(service, BACKGROUND)}.awaited"
    return None


def lane_queues(service: str, lane: str) -> tuple[str, ...]:
    """Every queue a lane's workers consume: its own, and in the background lane the queue of
    awaited mail where the service has one."""
    awaited = awaited_queue(service) if lane == BACKGROUND else None
    return (lane_queue(service, lane),) + ((awaited,) if awaited else ())


def service_of(task_name: str) -> str:
    service = task_name.split(".", 1)[0]
    if service not in SERVICES:
        raise ValueError(f"task {task_name!r} does not start with a service name {SERVICES}")
    return service


def lane_of(task_name: str) -> str:
    return BACKGROUND if task_name in BACKGROUND_TASKS else INTERACTIVE


def queue_for_task(task_name: str) -> str:
    service = service_of(task_name)
    if task_name in AWAITED_TASKS:
        return awaited_queue(service)
    return lane_queue(service, lane_of(task_name))


def route_task(name: str, args, kwargs, options, task=None, **kw) -> dict:
    """Celery ``task_routes`` hook: every task goes to its service's queue of its lane."""
    return {"queue": queue_for_task(name)}


def consumers_of(event_type: str) -> tuple[str, ...]:
    try:
        return EVENT_ROUTES[event_type]
    except KeyError:
        raise ValueError(
            f"unknown event type {event_type!r}: add it to shared.routing.EVENT_ROUTES"
        ) from None
