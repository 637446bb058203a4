"""The one routing table: which queue each service consumes, and which services hear each event.

Task names are ``<service>.<verb>_<noun>``; the prefix is the queue, so a task is always
delivered to the worker of the service that owns it.
"""

from __future__ import annotations

SERVICES: tuple[str, ...] = ("directory", "blog", "notifier")

# event type -> the services whose ``<service>.handle_event`` task receives it
EVENT_ROUTES: dict[str, tuple[str, ...]] = {
    "directory.partnership_changed": ("notifier",),
    "blog.post_published": ("notifier",),
    "blog.post_updated": ("notifier",),
    "directory.cities_changed": (),
}


# event type -> the cache generation it moves: the gateway's cached answers of that generation
# are stale from then on (the relay bumps the counter when it delivers the event).
CACHE_GENERATIONS: dict[str, str] = {
    "directory.partnership_changed": "directory",
    "directory.cities_changed": "directory",
    "blog.post_published": "blog",
    "blog.post_updated": "blog",
}
GENERATION_KEY = "sistercities:cache-generation:{}"


def queue_for_task(task_name: str) -> str:
    service = task_name.split(".", 1)[0]
    if service not in SERVICES:
        raise ValueError(f"task {task_name!r} does not start with a service name {SERVICES}")
    return service


def route_task(name: str, args, kwargs, options, task=None, **kw) -> dict:
    """Celery ``task_routes`` hook: every task goes to its service's queue."""
    return {"queue": queue_for_task(name)}


def consumers_of(event_type: str) -> tuple[str, ...]:
    try:
        return EVENT_ROUTES[event_type]
    except KeyError:
        raise ValueError(
            f"unknown event type {event_type!r}: add it to shared.routing.EVENT_ROUTES"
        ) from None
