"""`sistercities worker SERVICE` without ``--lane``: both of a service's lanes, each in a
process of its own, started and stopped as one.

The children share this process's output and process group, so a signal to the group (a
supervisor's, a terminal's) reaches them all; a signal to this process alone is passed on.
When one lane exits the other is stopped: a service half running is worse than a clear failure.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time

from shared.routing import LANES
from sistercities.supervisor import APP_GRACE_SECONDS, die_with_parent

POLL_SECONDS = 0.2


def run_lanes(service: str, celery_args: tuple[str, ...]) -> int:
    """Run every lane of ``service`` until a signal comes or one lane exits; returns the exit
    status to use."""
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "sistercities", "worker", service, "--lane", lane, *celery_args],
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        for lane in LANES
    ]

    def stop(*_args) -> None:
        # Both signals mean a warm shutdown to Celery; SIGINT twice would mean a cold one.
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    status = _first_exit(children)
    stop()
    for child in children:
        try:
            child.wait(timeout=APP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return status


def _first_exit(children: list[subprocess.Popen]) -> int:
    while True:
        for child in children:
            code = child.poll()
            if code is not None:
                return code if code >= 0 else 128 - code
        time.sleep(POLL_SECONDS)
