"""`sistercities run` on a fresh machine: embedded Redis, SQLite files, a local mail catcher;
ready within 20 s; Ctrl-C stops every process within 10 s; a taken port is a clear error."""

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests

from tests.stack import free_port, wait_for

pytestmark = pytest.mark.integration

EMBEDDED_ONLY = (
    "REDIS_URL",
    "SMTP_URL",
    "DIRECTORY_DATABASE_URL",
    "BLOG_DATABASE_URL",
    "NOTIFIER_DATABASE_URL",
)


def fresh_env(
    data_dir: Path, port: int, mail_port: int, mailbox_port: int | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in EMBEDDED_ONLY}
    env.update(
        DATA_DIR=str(data_dir),
        PORT=str(port),
        MAILCATCHER_PORT=str(mail_port),
        MAILBOX_PORT=str(mailbox_port or free_port()),
        PYTHONUNBUFFERED="1",
    )
    return env


def descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {root}
    while frontier:
        children = {pid for pid, parent in parents.items() if parent in frontier}
        frontier = children - found
        found |= children
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_run_starts_everything_embedded_and_ctrl_c_stops_it_all(tmp_path):
    port, mail_port, mailbox_port = free_port(), free_port(), free_port()
    data_dir = tmp_path / "var"
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        run = subprocess.Popen(
            [sys.executable, "-m", "sistercities", "run"],
            env=fresh_env(data_dir, port, mail_port, mailbox_port),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        started = time.monotonic()

        def ready():
            try:
                return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=3).status_code == 200
            except requests.RequestException:
                return False

        # Eleven Python processes start at once (two lanes of four services, the gateway, beat,
        # the relay): on a busy two-core machine that alone takes tens of seconds.
        wait_for(ready, timeout=90, interval=0.2, what="/readyz to answer 200")
        ready_after = time.monotonic() - started
        body = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=3).json()
        assert {name for name, s in body["services"].items() if s["status"] == "ok"} == {
            "directory",
            "blog",
            "notifier",
            "staff",
        }
        for database in ("directory.db", "blog.db", "notifier.db", "staff.db"):
            assert (data_dir / database).exists()

        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "a@example.org", "b@example.org", "hi"
        message.set_content("caught")
        with smtplib.SMTP("127.0.0.1", mail_port, timeout=5) as smtp:
            smtp.send_message(message)
        caught = wait_for(lambda: list((data_dir / "mail").glob("*.eml")), what="an .eml file")
        assert b"caught" in caught[0].read_bytes()
        # The unsubscribe mailbox listens too, for unsubscribe@ MAIL_FROM's domain only.
        with smtplib.SMTP("127.0.0.1", mailbox_port, timeout=5) as smtp:
            smtp.ehlo()
            smtp.docmd("MAIL", "FROM:<a@example.org>")
            assert smtp.docmd("RCPT", "TO:<unsubscribe@sistercities.localhost>")[0] == 250
            assert smtp.docmd("RCPT", "TO:<b@example.org>")[0] == 550

        # A fresh machine shows a working directory: cities and the sample load by themselves.
        def minneapolis_has_sisters():
            response = requests.get(
                f"http://127.0.0.1:{port}/api/v1/cities", params={"q": "minneapolis"}, timeout=5
            )
            results = response.json().get("results") if response.status_code == 200 else None
            return results and results[0]["sister_count"] >= 5 and results[0]

        minneapolis = wait_for(
            minneapolis_has_sisters, timeout=180, interval=1, what="the sample directory"
        )
        sisters = requests.get(
            f"http://127.0.0.1:{port}/api/v1/cities/{minneapolis['id']}", timeout=5
        ).json()["sisters"]
        assert ("Najaf", "IQ", 2009) in {
            (s["name"], s["country_code"], s["since"]) for s in sisters
        }

        output = log_path.read_text()
        for name in ("gateway", "directory", "blog", "notifier", "staff", "beat", "relay",
                     "mailbox", "redis", "demo"):  # fmt: skip
            assert f"\n{name}" in output, f"no log line prefixed with {name}"
        processes = descendants(run.pid)
        assert len(processes) >= 9

        run.send_signal(signal.SIGINT)
        stop_started = time.monotonic()
        run.wait(timeout=12)
        stopped_after = time.monotonic() - stop_started
    finally:
        if run.poll() is None:
            run.kill()
    assert stopped_after < 10, f"stopping took {stopped_after:.1f} s"
    output = log_path.read_text()
    # The application stops before what it stands on: the relay is done before Redis goes.
    assert output.index("relay_stopped") < output.index("Received SIGTERM scheduling shutdown")
    left = [pid for pid in processes if alive(pid)]
    assert left == [], f"processes left behind: {left}"
    print(f"ready after {ready_after:.1f} s, stopped after {stopped_after:.1f} s")


def test_a_taken_port_is_a_clear_error_and_exit_1(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "sistercities", "run"],
            env=fresh_env(tmp_path / "var", port, free_port()),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is taken" in result.stderr
    assert "PORT" in result.stderr


def test_invalid_configuration_is_reported_before_anything_starts(tmp_path):
    env = fresh_env(tmp_path / "var", free_port(), free_port())
    env.update(PORT="eighty", REDIS_URL="ftp://nowhere")
    result = subprocess.run(
        [sys.executable, "-m", "sistercities", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "PORT='eighty' is not an integer" in result.stderr
    assert "REDIS_URL='ftp://nowhere'" in result.stderr
