"""A lock in Redis that one process at a time holds, among all the processes (on any host) that
share its key: how several beats run with one sending.

Taken with ``SET NX PX`` and renewed by its holder before it expires, in one script (take it if
free, extend it if ours). A holder that dies frees it within ``ttl`` seconds. A holder that
cannot reach Redis counts itself the holder only until the lock may have expired on the
server, so two processes never both believe they hold it while Redis keeps the key.

Behind Sentinel the key lives on the master and is replicated asynchronously: a failover in
the moment after the lock was first taken can lose it, and a second process may take it
before the first notices on its next renewal. What a lock holder does must therefore be safe
to do twice now and then (every periodic task here is).
"""

from __future__ import annotations

import os
import socket
import time
import uuid

import redis

from shared.logs import get_logger

log = get_logger(__name__)

# Take the lock if nobody holds it, extend it if we do: 1 when it is ours afterwards.
_TAKE_OR_RENEW = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class LeaderLock:
    def __init__(self, client: redis.Redis, key: str, ttl_seconds: float):
        self.key = key
        self.ttl_ms = int(ttl_seconds * 1000)
        # Who holds it, for people reading the key: host, process, and a nonce for restarts.
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._take_or_renew = client.register_script(_TAKE_OR_RENEW)
        self._release = client.register_script(_RELEASE)
        self._valid_until = 0.0

    @property
    def held(self) -> bool:
        return time.monotonic() < self._valid_until

    def hold(self) -> bool:
        """Take the lock if it is free, renew it if it is ours: True while it is ours."""
        asked_at = time.monotonic()
        was_held = self.held
        try:
            ours = bool(self._take_or_renew(keys=[self.key], args=[self.token, self.ttl_ms]))
        except redis.exceptions.RedisError as error:
            # Unknown: the lock stays ours at most until it could have expired.
            log.warning("leader_lock_unreachable", key=self.key, error=str(error))
            return self.held
        # The server's expiry is at least ttl after we asked; stop a little before it.
        self._valid_until = asked_at + self.ttl_ms / 1000 * 0.9 if ours else 0.0
        if ours != was_held:
            log.info("leader_lock_taken" if ours else "leader_lock_lost", key=self.key)
        return ours

    def release(self) -> None:
        """Give the lock up now (a standby takes it at its next try) if it is still ours."""
        self._valid_until = 0.0
        try:
            self._release(keys=[self.key], args=[self.token])
        except redis.exceptions.RedisError as error:
            log.warning("leader_lock_release_failed", key=self.key, error=str(error))
