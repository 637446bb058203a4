"""A small HTTP/1.1 load generator on asyncio with keep-alive connections.

Two modes: closed loop (N connections, each sends its next request when the last answer
arrives: throughput) and open loop (requests scheduled at a fixed rate, latency measured from
the scheduled time, so a slow server cannot hide its queueing: no coordinated omission).
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Post:
    """A request with a JSON body, where a plain path means a GET."""

    path: str
    body: bytes


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    rounds: list[float] = field(default_factory=list)  # req/s of each round, when interleaved

    @property
    def rps(self) -> float:
        if self.rounds:
            return statistics.median(self.rounds)
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index]

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else float("nan")

    @property
    def p99_ms(self) -> float:
        return self.percentile(99) * 1000


class Connection:
    """One keep-alive connection; each request takes the next path of a shared cycle."""

    def __init__(self, host: str, port: int, paths: itertools.cycle):
        self.host, self.port = host, port
        self.paths = paths
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        request = next(self.paths)
        head = f"Host: {self.host}:{self.port}\r\nConnection: keep-alive\r\n"
        if isinstance(request, Post):
            self.writer.write(
                f"POST {request.path} HTTP/1.1\r\n{head}Content-Type: application/json\r\n"
                f"Content-Length: {len(request.body)}\r\n\r\n".encode()
                + request.body
            )
        else:
            self.writer.write(f"GET {request} HTTP/1.1\r\n{head}\r\n".encode())
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("closed")
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def _closed_loop(host, port, paths, connections, seconds) -> Result:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker():
        nonlocal errors
        connection = Connection(host, port, paths)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                status = await connection.get()
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
                errors += 1
                connection.close()
                continue
            if 200 <= status < 300:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    return Result(len(latencies), errors, elapsed, latencies)


async def _open_loop(host, port, paths, rate, seconds, connections) -> Result:
    latencies: list[float] = []
    errors = 0
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(Connection(host, port, paths))
    total = int(rate * seconds)
    start = time.perf_counter() + 0.05

    async def one(scheduled: float):
        nonlocal errors
        connection = await pool.get()
        try:
            status = await connection.get()
            if 200 <= status < 300:
                latencies.append(time.perf_counter() - scheduled)
            else:
                errors += 1
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            connection.close()
        finally:
            pool.put_nowait(connection)

    tasks = []
    for n in range(total):
        scheduled = start + n / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait().close()
    return Result(len(latencies), errors, elapsed, latencies)


def closed_loop(
    url: str, connections: int, seconds: float, paths: list[str] | None = None
) -> Result:
    """``paths``: requests cycle through them (on the host of ``url``); else ``url``'s path."""
    host, port, path = _split(url)
    cycle = itertools.cycle(paths or [path])
    return asyncio.run(_closed_loop(host, port, cycle, connections, seconds))


def open_loop(
    url: str,
    rate: float,
    seconds: float,
    connections: int = 32,
    paths: list[str | Post] | None = None,
) -> Result:
    host, port, path = _split(url)
    cycle = itertools.cycle(paths or [path])
    return asyncio.run(_open_loop(host, port, cycle, rate, seconds, connections))


def _split(url: str) -> tuple[str, int, str]:
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    return host, int(port or 80), "/" + path


def interleaved(runs: dict[str, Callable[[float], Result]], seconds: float, rounds: int = 5):
    """Each run for ``seconds`` in all, in ``rounds`` short turns taken in turn, so that a
    shared machine's slow moments fall on every run alike; req/s is the median of the turns,
    latencies are those of every turn."""
    turns: dict[str, list[Result]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            turns[name].append(run(seconds / rounds))
    return {
        name: Result(
            sum(r.requests for r in results),
            sum(r.errors for r in results),
            sum(r.seconds for r in results),
            [latency for r in results for latency in r.latencies],
            [r.rps for r in results],
        )
        for name, results in turns.items()
    }
