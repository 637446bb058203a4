"""When to fetch a feed next: often for a feed that posts often, rarely for a quiet one, never
sooner than the server asks, and backing off (but never giving up) while it fails."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

MIN_INTERVAL = timedelta(minutes=15)
MAX_INTERVAL = timedelta(hours=24)
DEFAULT_INTERVAL = timedelta(hours=1)
# What a server may ask for is honoured up to a week: further than that is a mistake.
MAX_SERVER_DELAY = timedelta(days=7)
FIRST_BACKOFF = timedelta(minutes=15)
# A feed that posts every N hours is checked about 8 times per post: new stories show up
# within a fraction of the posting gap.
CHECKS_PER_POST = 8
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*(\d+)", re.IGNORECASE)


def interval_from_posts(published: Iterable[datetime], now: datetime) -> timedelta:
    """The polling interval a feed's own rhythm suggests: the average gap between its
    recent posts (and since the newest one) divided by ``CHECKS_PER_POST``, clamped."""
    times = sorted((moment for moment in published if moment <= now), reverse=True)[:10]
    if not times:
        return MAX_INTERVAL
    gaps = [now - times[0]] + [newer - older for newer, older in itertools.pairwise(times)]
    average = sum(gaps, timedelta()) / len(gaps)
    return _clamp(average / CHECKS_PER_POST, MIN_INTERVAL, MAX_INTERVAL)


def server_delay(headers: Mapping[str, str], ttl_minutes: int | None) -> timedelta:
    """The least time the server asked us to wait: RSS ``<ttl>``, ``Cache-Control: max-age``,
    ``Retry-After`` (seconds)."""
    delays = [timedelta()]
    if ttl_minutes:
        delays.append(timedelta(minutes=ttl_minutes))
    lowered = {name.lower(): value for name, value in headers.items()}
    if match := _MAX_AGE.search(lowered.get("cache-control", "")):
        delays.append(timedelta(seconds=int(match.group(1))))
    if (retry := lowered.get("retry-after", "").strip()).isdigit():
        delays.append(timedelta(seconds=int(retry)))
    return min(max(delays), MAX_SERVER_DELAY)


def next_success_check(interval: timedelta, server_asks: timedelta, now: datetime) -> datetime:
    return now + _jitter(max(interval, server_asks))


def next_failure_check(error_count: int, server_asks: timedelta, now: datetime) -> datetime:
    """15 min, 30 min, 1 h, ... capped at 24 h: a broken feed costs little and is retried."""
    backoff = min(FIRST_BACKOFF * 2 ** min(max(error_count - 1, 0), 16), MAX_INTERVAL)
    return now + _jitter(max(backoff, server_asks))


def _jitter(delay: timedelta) -> timedelta:
    # Feeds added together would otherwise be fetched together for ever; only later, never
    # sooner than asked.
    return delay * random.uniform(1.0, 1.1)


def _clamp(value: timedelta, low: timedelta, high: timedelta) -> timedelta:
    return max(low, min(value, high))
