"""Starts the system's processes, prefixes their output with their names, and stops them all.

Any process that exits on its own stops the whole system (as foreman and honcho do): a
half-running system that looks healthy is worse than a clear failure.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

# Ctrl-C must leave nothing behind within 10 s: the application first, then what it uses.
APP_GRACE_SECONDS = 6.0
INFRASTRUCTURE_GRACE_SECONDS = 2.0
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Children get SIGTERM if the supervisor itself is killed, so none is left behind."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    infrastructure: bool = False
    oneshot: bool = False
    process: subprocess.Popen | None = None
    reader: threading.Thread | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self, out=None):
        self.children: list[Child] = []
        self.out = out or sys.stdout
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.width = 8

    def say(self, name: str, line: str) -> None:
        with self.lock:
            self.out.write(f"{name:<{self.width}} | {line.rstrip()}\n")
            self.out.flush()

    def start(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        infrastructure: bool = False,
        oneshot: bool = False,
    ) -> Child:
        """Start a child. Infrastructure (Redis, the mail catcher) is stopped last; a oneshot
        child (a data load) may finish without stopping the rest."""
        child = Child(name, argv, env, infrastructure, oneshot)
        self.width = max(self.width, len(name))
        child.process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        child.reader = threading.Thread(target=self._pump, args=(child,), daemon=True)
        child.reader.start()
        self.children.append(child)
        return child

    def _pump(self, child: Child) -> None:
        assert child.process is not None and child.process.stdout is not None
        for raw in iter(child.process.stdout.readline, b""):
            self.say(child.name, raw.decode("utf-8", "replace"))

    def wait(self) -> int:
        """Block until a signal arrives or a child exits. Returns the exit status to use."""
        status = 0
        received: list[int] = []

        def on_signal(signum, _frame):
            received.append(signum)
            self.stopping.set()

        previous = {
            signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            while not self.stopping.is_set():
                for child in self.children:
                    code = child.process.poll() if child.process else None
                    if code is not None and child.oneshot:
                        outcome = "finished" if code == 0 else f"failed (status {code})"
                        self.say("run", f"{child.name} {outcome}")
                        self.children.remove(child)
                        break
                    if code is not None:
                        self.say("run", f"{child.name} exited with status {code}; stopping all")
                        status = 1
                        self.stopping.set()
                        break
                self.stopping.wait(0.2)
        finally:
            if received:
                self.say("run", f"received {signal.Signals(received[0]).name}; stopping all")
            self.stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return status

    def stop_all(self) -> None:
        """SIGTERM to the application's process groups, then to the infrastructure's;
        SIGKILL to whatever is left after each grace period."""
        self.stopping.set()
        app = [child for child in self.children if not child.infrastructure]
        infrastructure = [child for child in self.children if child.infrastructure]
        self._stop(app, APP_GRACE_SECONDS)
        self._stop(infrastructure, INFRASTRUCTURE_GRACE_SECONDS)

    def _stop(self, children: list[Child], grace: float) -> None:
        for child in children:
            self._signal(child, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                self.say("run", f"{child.name} did not stop in time; killing it")
        for child in children:
            # The group may hold grandchildren (gunicorn's workers) even after the leader left.
            self._signal(child, signal.SIGKILL)
            if child.process is not None:
                child.process.wait()
            if child.reader is not None:
                child.reader.join(timeout=1)

    @staticmethod
    def _signal(child: Child, signum: int) -> None:
        if child.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signum)
