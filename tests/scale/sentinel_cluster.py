"""Redis with Sentinel on local ports, for failover tests: one master, one replica and three
sentinels, each a real ``redis-server`` whose files live in a temporary folder."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import redis

from tests.stack import free_port, wait_for

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
MASTER_NAME = "mymaster"


class SentinelCluster:
    def __init__(self, directory: Path, master_name: str = MASTER_NAME):
        self.directory = directory
        self.master_name = master_name
        self.data_ports = [free_port(), free_port()]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[int, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        """REDIS_URL as the system reads it: every sentinel, in kombu's notation."""
        return ";".join(f"sentinel://127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self) -> SentinelCluster:
        master, replica = self.data_ports
        self.start_data_node(master)
        self.start_data_node(replica, replica_of=master)
        for port in self.sentinel_ports:
            conf = self.directory / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\n"
                f"dir {self.directory}\n"
                f"sentinel monitor {self.master_name} 127.0.0.1 {master} 2\n"
                f"sentinel down-after-milliseconds {self.master_name} 1000\n"
                f"sentinel failover-timeout {self.master_name} 5000\n"
            )
            self._spawn(port, [REDIS_SERVER, str(conf), "--sentinel"])
        wait_for(lambda: _in_sync(replica), timeout=30, interval=0.1,
                 what="the replica's first sync")  # fmt: skip
        # Sentinels find replicas through INFO every 10 s and one another through hellos every
        # 2 s; on a loaded machine (CI with the fault suite before it) that took over 30 s.
        wait_for(self._sentinels_agree, timeout=90, interval=0.2,
                 what="the sentinels to see the master, its replica and one another")  # fmt: skip
        return self

    def start_data_node(self, port: int, replica_of: int | None = None) -> None:
        folder = self.directory / f"redis-{port}"
        folder.mkdir(exist_ok=True)
        args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                "--appendonly", "yes", "--save", "",
                # A replica's first sync at once, not after diskless sync's 5 s wait.
                "--repl-diskless-sync-delay", "0"]  # fmt: skip
        if replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        self._spawn(port, args)
        wait_for(lambda: _answers(port), timeout=10, what=f"redis-server on port {port}")

    def _spawn(self, port: int, args: list[str]) -> None:
        log = (self.directory / f"{port}.log").open("ab")
        self.processes[port] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def sentinel(self, port: int | None = None) -> redis.Redis:
        return redis.Redis(port=port or self.sentinel_ports[0], socket_timeout=2)

    def master_port(self) -> int:
        """The master's port as the sentinels say (a majority of them)."""
        votes: dict[int, int] = {}
        for port in self.sentinel_ports:
            try:
                _host, master = self.sentinel(port).sentinel_get_master_addr_by_name(
                    self.master_name
                )
            except redis.RedisError:
                continue
            votes[int(master)] = votes.get(int(master), 0) + 1
        return max(votes, key=votes.get) if votes else 0

    def _sentinels_agree(self) -> bool:
        master, replica = self.data_ports
        for port in self.sentinel_ports:
            try:
                state = self.sentinel(port).sentinel_master(self.master_name)
                replicas = self.sentinel(port).sentinel_slaves(self.master_name)
            except redis.RedisError:
                return False
            if int(state["port"]) != master or state["num-other-sentinels"] < 2:
                return False
            if not any(int(r["port"]) == replica and not r["is_sdown"] for r in replicas):
                return False
        return True

    def kill(self, port: int) -> None:
        process = self.processes[port]
        process.send_signal(signal.SIGKILL)
        process.wait()

    def pause(self, port: int) -> None:
        """The server stops answering but keeps its connections, as a frozen host would."""
        self.processes[port].send_signal(signal.SIGSTOP)

    def resume(self, port: int) -> None:
        self.processes[port].send_signal(signal.SIGCONT)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log(self, port: int) -> str:
        return (self.directory / f"{port}.log").read_text(errors="replace")


def _in_sync(port: int) -> bool:
    try:
        return (
            redis.Redis(port=port, socket_timeout=1).info("replication").get("master_link_status")
            == "up"
        )
    except redis.RedisError:
        return False


def _answers(port: int) -> bool:
    try:
        return redis.Redis(port=port, socket_timeout=1).ping()
    except redis.RedisError:
        return False


def wait_for_failover(cluster: SentinelCluster, old_master: int, timeout: float = 30) -> int:
    """The port of the replica the sentinels promote in place of ``old_master``."""

    def promoted() -> int:
        port = cluster.master_port()
        return port if port not in (0, old_master) else 0

    return wait_for(promoted, timeout=timeout, interval=0.1,
                    what="the sentinels to promote the replica")  # fmt: skip
