"""A browser that has just opened a subscriber's mailed link: its preferences token kept in
the session for a while, so that following another city from a page adds it at once rather
than mailing a link to the inbox the visitor has just come from.

Only the token travels; the notifier decides (the address typed must be the link's, and the
subscription confirmed). A session holding it is no longer anonymous to the page cache: the
pages are rendered for this visitor until the token is dropped."""

from __future__ import annotations

import time

from flask import session

KEY = "subscriber_link"
# A visit that began at a mailed link: long enough to look around, short enough that a
# shared computer forgets it.
RECENT_SECONDS = 30 * 60
MAX_TOKEN_CHARS = 300


def remember(answer: dict) -> None:
    """After a link of the notifier's worked: ``answer`` carries its preferences token."""
    token = answer.get("preferences_token")
    if isinstance(token, str) and len(token) <= MAX_TOKEN_CHARS:
        session[KEY] = [token, int(time.time())]


def recent_token() -> str | None:
    """The token of a link opened within ``RECENT_SECONDS``; an older one is dropped."""
    kept = session.get(KEY)
    if not kept:
        return None
    try:
        token, opened = kept
        fresh = isinstance(token, str) and 0 <= time.time() - float(opened) <= RECENT_SECONDS
    except (TypeError, ValueError):
        fresh = False
    if not fresh:
        session.pop(KEY, None)
        return None
    return token
