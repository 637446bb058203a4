"""The notifier as one worker process consuming both of its lanes, the interactive queue first
(kombu's priority order): the alternative to a process per lane that ``bench_lanes`` measures.

    python -m benchmarks.priority_worker
"""

from __future__ import annotations

from services.notifier.worker import runtime
from shared.celery_app import install_worker_hooks
from shared.logs import configure_logging
from shared.routing import LANES, lane_queue


def main() -> None:
    configure_logging(runtime.settings, "notifier-both")
    runtime.celery.conf.broker_transport_options["queue_order_strategy"] = "priority"
    install_worker_hooks(runtime.redis)
    queues = ",".join(lane_queue("notifier", lane) for lane in LANES)
    runtime.celery.worker_main(
        [
            "worker",
            f"--queues={queues}",
            "--hostname=notifier-both@%h",
            f"--pool={runtime.settings.worker_pool}",
            f"--concurrency={runtime.settings.worker_concurrency}",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


if __name__ == "__main__":
    main()
