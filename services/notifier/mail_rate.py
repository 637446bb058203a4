"""The global mail rate (``MAIL_RATE``): at most so many messages a second across every
notifier worker, as a mail provider's limit wants, counted in Redis."""

from __future__ import annotations

import time


class Pace:
    """Called before each message: returns when the message may go."""

    def __init__(self, redis_client, rate: float, key: str = "sistercities:notifier:rate:{}"):
        self.redis = redis_client
        self.rate = rate
        self.key = key

    def __call__(self) -> None:
        if self.rate <= 0:
            return
        while True:
            second = int(time.time())
            key = self.key.format(second)
            pipe = self.redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, 5)
            count, _ = pipe.execute()
            if count <= self.rate:
                return
            time.sleep(max(0.0, second + 1 - time.time()))
