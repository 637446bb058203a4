"""Who is acting: the person or machine on whose behalf a task runs.

The gateway names the actor of each request (a staff member signed in, the machine API's
bearer token), the command line names the user running it, and the name travels with every
task in the ``actor`` header, as the request id does. A worker binds it for the task's log
lines and sets it here, where the service's code reads it (the audit log records it) without
passing it through every function.
"""

from __future__ import annotations

import contextlib
import getpass
import re
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

ACTOR_HEADER = "actor"
# "staff:12", "token:admin", "cli:ada"; what a log line or a filter needs.
ACTOR_ID = re.compile(
    r"(staff:[0-9]{1,12}|token:[a-z0-9_-]{1,40}|cli:[^\s:]{1,64}|subscriber:[0-9]{1,12}|system)"
)
MAX_NAME_CHARS = 300

Actor = dict[str, str]  # {"id": "staff:12", "name": "Ada Lovelace <ada@example.org>"}
SYSTEM: Actor = {"id": "system", "name": "the system"}

_current: ContextVar[Actor | None] = ContextVar("sistercities_actor", default=None)


def current_actor() -> Actor | None:
    return _current.get()


def set_actor(actor: Actor | None) -> None:
    """Name the actor of what this thread does next (a request, a task), or nobody."""
    _current.set(actor)


@contextlib.contextmanager
def acting_as(actor: Actor | None) -> Iterator[None]:
    token = _current.set(actor)
    try:
        yield
    finally:
        _current.reset(token)


def staff_actor(staff_id: int, name: str, email: str) -> Actor:
    label = f"{name} <{email}>" if name and name != email else email
    return {"id": f"staff:{staff_id}", "name": label[:MAX_NAME_CHARS]}


def token_actor(token_name: str) -> Actor:
    return {"id": f"token:{token_name}", "name": f"the {token_name} token (machine API)"}


def subscriber_actor(subscriber_id: int) -> Actor:
    """A subscriber acting on their own subscription (a signed link): named by id only, so
    the log keeps no address an erasure would have to find."""
    return {"id": f"subscriber:{subscriber_id}", "name": f"subscriber {subscriber_id}"}


def cli_actor(user: str | None = None) -> Actor:
    """The person at the command line, as the system knows them (the login name)."""
    if user is None:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no name for this uid (a container's bare uid)
            user = "unknown"
    user = re.sub(r"[\s:]", "_", user)[:64] or "unknown"
    return {"id": f"cli:{user}", "name": f"{user} at the command line"}


def from_header(value: Any) -> Actor | None:
    """The actor a task message names, if it names a well-formed one: the header comes from
    Redis, and a malformed value must not reach the audit log as if it were a person."""
    if not isinstance(value, dict):
        return None
    actor_id, name = value.get("id"), value.get("name")
    if not isinstance(actor_id, str) or not ACTOR_ID.fullmatch(actor_id):
        return None
    if not isinstance(name, str):
        name = actor_id
    return {"id": actor_id, "name": name[:MAX_NAME_CHARS]}
