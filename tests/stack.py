"""The real system for integration tests: workers and the relay as subprocesses, each with
its log in a file, started, stopped and killed by the tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def duplicates_dropped(log: str) -> int:
    """Events a consumer's log says it received again and dropped (``event_duplicate``)."""
    lines = (json.loads(line) for line in log.splitlines() if '"event_duplicate"' in line)
    return sum(line["count"] for line in lines if line.get("event") == "event_duplicate")


def wait_for(
    check: Callable[[], T], timeout: float = 15.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or check}")
        time.sleep(interval)


class Stack:
    def __init__(self, env: dict[str, str], log_dir: Path):
        self.env = env
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen] = {}

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "sistercities", *args]

    def start(self, name: str, *args: str) -> subprocess.Popen:
        """Start ``sistercities <args>`` as the process called ``name``."""
        assert name not in self.processes or self.processes[name].poll() is not None
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            self.command(*args),
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes[name] = process
        return process

    def start_worker(self, service: str, name: str | None = None) -> subprocess.Popen:
        return self.start(name or service, "worker", service)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        process = self.processes.get(name)
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass

    def kill(self, name: str) -> None:
        self.stop(name, signal.SIGKILL)

    def running(self, *names: str) -> bool:
        """Whether each of these processes is running (none stopped or killed by a test)."""
        return all(name in self.processes and self.processes[name].poll() is None for name in names)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""
