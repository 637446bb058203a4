"""The gateway under a steady open-loop load (City Search and city pages, about 60 requests a
second) while one directory worker of two is killed: the error rate and the time to recover
are measured and printed, and bounded — the requests lost are those the dead worker had
taken, each answered 503 when its call timed out, and the other worker serves the rest."""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests

from tests.faults.conftest import VISIBILITY_TIMEOUT
from tests.faults.workloads import add_known_cities
from tests.stack import wait_for

pytestmark = pytest.mark.faults

RATE = 60  # requests a second
BEFORE_KILL = 8.0
AFTER_KILL = VISIBILITY_TIMEOUT + 10.0


@dataclass
class Outcome:
    path: str
    sent_at: float  # seconds from the start of the load
    answered_at: float
    status: int  # 0: no HTTP answer at all


class OpenLoad:
    """Requests sent on a fixed timetable whatever the answers (a closed loop would slow
    down with the server and hide the fault), each recorded with its status and times."""

    def __init__(self, base_url: str, paths: list[str], rate: float, seconds: float):
        self.base_url, self.paths, self.rate, self.seconds = base_url, paths, rate, seconds
        self.outcomes: list[Outcome] = []
        self.local = threading.local()
        self.started = 0.0

    def _session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def _one(self, path: str, sent_at: float) -> None:
        try:
            status = self._session().get(self.base_url + path, timeout=15).status_code
        except requests.RequestException:
            status = 0
        self.outcomes.append(Outcome(path, sent_at, time.monotonic() - self.started, status))

    def run(self) -> None:
        self.started = time.monotonic()
        with ThreadPoolExecutor(max_workers=64) as pool:
            for n in range(int(self.rate * self.seconds)):
                sent_at = n / self.rate
                delay = self.started + sent_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(self._one, self.paths[n % len(self.paths)], sent_at)


def test_one_directory_worker_of_two_killed_under_load(faults):
    ids = list(add_known_cities(faults).values())
    second = faults.processes.start("directory-2", "worker", "directory")
    try:
        wait_for(lambda: " ready." in faults.processes.log("directory-2"), timeout=60,
                 what="the second directory worker")  # fmt: skip
        paths = [
            "/api/v1/cities?q=Ruritania", f"/api/v1/cities/{ids[0]}", "/api/v1/cities?q=zenda",
            f"/cities/{ids[1]}", "/api/v1/cities?q=Graustark", f"/api/v1/cities/{ids[2]}",
        ]  # fmt: skip
        load = OpenLoad(faults.gateway_url, paths, RATE, BEFORE_KILL + AFTER_KILL)
        running = threading.Thread(target=load.run)
        running.start()
        time.sleep(BEFORE_KILL)  # the timetable of the kill, not a wait for a condition
        faults.processes.kill("directory")
        killed_at = time.monotonic() - load.started
        running.join()
    finally:
        faults.processes.stop("directory-2")
    assert second.poll() is not None

    outcomes = sorted(load.outcomes, key=lambda outcome: outcome.sent_at)
    failed = [outcome for outcome in outcomes if outcome.status != 200]
    before = [outcome for outcome in outcomes if outcome.answered_at < killed_at]
    latencies = sorted(outcome.answered_at - outcome.sent_at for outcome in outcomes)
    recovery = max((outcome.answered_at for outcome in failed), default=killed_at) - killed_at
    error_rate = len(failed) / len(outcomes)
    faults.say(
        f"gateway under load, one directory worker of two killed: {len(outcomes)} requests at "
        f"{RATE}/s, {len(failed)} failed ({error_rate:.1%}; statuses "
        f"{sorted({outcome.status for outcome in failed})}), last failure {recovery:.1f} s after "
        f"the kill; latency p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.0f} ms"
    )
    by_path = {
        path: statistics.median(o.answered_at - o.sent_at for o in outcomes if o.path == path)
        for path in paths
    }
    faults.say("gateway under load, median latency by route: " + ", ".join(
        f"{path} {seconds * 1000:.0f} ms" for path, seconds in by_path.items()))  # fmt: skip
    assert len(outcomes) == int(RATE * (BEFORE_KILL + AFTER_KILL))
    assert all(outcome.status == 200 for outcome in before), "failures before the kill"
    assert {outcome.status for outcome in failed} <= {503}  # never a 500, never a hang
    assert error_rate < 0.05
    assert recovery < VISIBILITY_TIMEOUT
