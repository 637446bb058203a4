"""How much work waits in the services' queues, read from the broker: for staff (the gateway's
dashboard, `sistercities queues`). Reading Redis' lists is infrastructure, not any service's
data."""

from __future__ import annotations

import redis

from shared.routing import SERVICES

# kombu's Redis transport keeps the messages workers have taken and not yet acknowledged
# (acks_late: until the task ends) in this hash, for every queue together.
UNACKED_KEY = "unacked"


def queue_lengths(client: redis.Redis) -> dict:
    """``{"waiting": {service: messages}, "unacknowledged": messages}``. Every message here is
    sent without a priority, so kombu keeps a queue in the one list named after it."""
    pipe = client.pipeline(transaction=False)
    for service in SERVICES:
        pipe.llen(service)
    pipe.hlen(UNACKED_KEY)
    *waiting, unacknowledged = pipe.execute()
    return {"waiting": dict(zip(SERVICES, waiting, strict=True)), "unacknowledged": unacknowledged}
