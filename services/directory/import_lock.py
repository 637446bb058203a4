"""One partnership import at a time. Two running together would each miss the other's new
cities and pairs (an import reads what exists once, at its start): duplicate cities, and a
failed insert half-way. The second one to start is refused; sending its file again once the
first has finished is safe, since a re-import changes nothing.

The lock lives in Redis with a short expiry that the import renews as it goes, so a worker
that dies mid-import frees it within ``LOCK_SECONDS``."""

from __future__ import annotations

import contextlib
import time

import redis

from shared.errors import Conflict

LOCK_KEY = "sistercities:directory:partnership-import"
LOCK_SECONDS = 60


class ImportLock:
    def __init__(self, client: redis.Redis):
        self.lock = client.lock(LOCK_KEY, timeout=LOCK_SECONDS)
        self.renewed = 0.0

    def __enter__(self) -> ImportLock:
        if not self.lock.acquire(blocking=False):
            raise Conflict(
                "another partnership import is under way: send the file again when it has "
                "finished (what it imported will be reported as already present)"
            )
        self.renewed = time.monotonic()
        return self

    def renew(self, _rows: int = 0) -> None:
        """Called as the import goes on (its progress and commit hooks): renews at most every
        few seconds. Raises if the lock was lost (the import then stops)."""
        if time.monotonic() - self.renewed > LOCK_SECONDS / 6:
            self.lock.reacquire()
            self.renewed = time.monotonic()

    def __exit__(self, *exc) -> None:
        # Expired (and perhaps taken since): nothing of ours to release.
        with contextlib.suppress(redis.exceptions.LockError):
            self.lock.release()
