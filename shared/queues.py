"""How much work waits in the services' queues, read from the broker: for staff (the gateway's
dashboard, `sistercities queues`). Reading Redis' lists is infrastructure, not any service's
data."""

from __future__ import annotations

import redis

from shared.routing import LANES, SERVICES, lane_queues

# kombu's Redis transport keeps the messages workers have taken and not yet acknowledged
# (acks_late: until the task ends) in this hash, for every queue together.
UNACKED_KEY = "unacked"


QUEUES: tuple[str, ...] = tuple(
    queue for service in SERVICES for lane in LANES for queue in lane_queues(service, lane)
)


def queue_lengths(client: redis.Redis) -> dict:
    """``{"waiting": {queue: messages}, "unacknowledged": messages}``, every queue of each
    lane of each service. Every message here is sent without a priority, so kombu keeps a queue in
    the one list named after it."""
    pipe = client.pipeline(transaction=False)
    for queue in QUEUES:
        pipe.llen(queue)
    pipe.hlen(UNACKED_KEY)
    *waiting, unacknowledged = pipe.execute()
    return {"waiting": dict(zip(QUEUES, waiting, strict=True)), "unacknowledged": unacknowledged}
