"""Digests: 100,000 confirmed subscribers, one weekly digest each (personal links), sent by the
notifier workers to a local aiosmtpd sink, against plain smtplib loops sending pre-built
messages to the same sink in the same run (the sink's ceiling). Then, by the same workers to
the same sink, a campaign ("Take Action" announcement) to all of them through the same
ledger: its rate beside the digests'.

Subscribers follow nothing (all the news) or one of ten cities, as readers of a few big
cities would; each distinct digest is rendered once and personalized per subscriber.
BENCH_SUBSCRIBERS changes the count.
"""

from __future__ import annotations

import json
import os
import random
import smtplib
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from benchmarks.processes import fresh_postgres, running_processes, start_redis, start_smtp_sink
from benchmarks.report import Row
from services.notifier import campaigns, digests, emails, mail
from services.notifier.models import Delivery, SisterLink, Story, Subscriber
from services.notifier.tokens import Tokens
from shared.celery_app import make_celery
from shared.db import make_engine, make_session_factory, session_scope
from shared.events import utcnow
from shared.migrations import upgrade
from shared.settings import CommonSettings, EnvReader

SUBSCRIBERS = int(os.environ.get("BENCH_SUBSCRIBERS", "100000"))
BASELINE_MESSAGES = 4000
MIGRATIONS = Path(__file__).resolve().parents[1] / "services" / "notifier" / "migrations"
SENDER = "Sister Cities <news@sistercities.example>"
WORKERS = 2


def measure(seconds: float = 10.0) -> list[Row]:
    rows = _build_rows()
    with running_processes() as processes, tempfile.TemporaryDirectory() as tmp:
        redis_url = start_redis(processes)
        postgres = fresh_postgres()
        url, drop = postgres if postgres else (f"sqlite:///{tmp}/notifier.db", None)
        label = "PostgreSQL" if postgres else "SQLite"
        try:
            upgrade(MIGRATIONS, url)
            _fill(url)
            sample = _sample_messages(url)
            ceilings, sink_cpu = {}, 0.0
            for senders in (1, 4):
                port, _report, sink = start_smtp_sink(processes, tmp, f"baseline{senders}")
                before = cpu_seconds([sink])
                ceilings[senders] = _smtplib_rate(port, senders, sample)
                sink_cpu = (cpu_seconds([sink]) - before) / BASELINE_MESSAGES * 1000
                rows.append(
                    Row(
                        f"sink ceiling: plain smtplib, {senders} sender(s), pre-built messages",
                        f"{ceilings[senders]:,.0f} msg/s (sink CPU {sink_cpu:.2f} ms a message)",
                    )
                )
            rows += _notifier_rows(processes, tmp, url, redis_url, label, ceilings[4], sink_cpu)
        finally:
            if drop is not None:
                drop()
    return rows


def _build_rows() -> list[Row]:
    """What one personalized message costs to make: built whole, or filled in."""
    tokens = Tokens("bench-key")
    settings = emails.MailSettings(SENDER, "https://sistercities.example", tokens)
    stories = [
        digests.StoryView(n, f"Story {n} about twinning", "Delegates met… " * 8,
                          f"https://medium.com/p/{n:012x}", "https://cdn.example/i.jpg", utcnow())
        for n in range(8)
    ]  # fmt: skip
    digest = digests.Digest(stories, 0)
    subscriber = Subscriber(id=1, email="reader@example.org", city_ids=[1], frequency="weekly")
    message_id = "<digest.weekly.2026-W48.1@sistercities.example>"
    template = emails.render_digest(digest, subscriber, settings)

    def whole():
        rendered = template.rendered
        mail.build_message(sender=SENDER, recipient=subscriber.email, rendered=rendered,
                           message_id=message_id, unsubscribe_url="https://x/u/t",
                           unsubscribe_mailto=settings.mailto("t"),
                           headers=template.headers)  # fmt: skip

    def filled():
        emails.personalize(template, subscriber, message_id, settings)

    costs = {name: _cpu_ms(step) for name, step in (("whole", whole), ("filled", filled))}
    costs.update(_dkim_costs(emails.personalize(template, subscriber, message_id, settings)))
    return [
        Row("one message built whole (EmailMessage, text + HTML)", f"{costs['whole']:.2f} ms CPU"),
        Row(
            "one message filled in from the digest's template (2 signed links)",
            f"{costs['filled']:.3f} ms CPU",
            f"built whole {costs['whole']:.2f} ms",
            f"{costs['whole'] / costs['filled']:.0f}x less",
        ),
        Row(
            "DKIM signature of one filled message (2048-bit RSA, relaxed/relaxed)",
            f"{costs['dkim']:.2f} ms CPU",
            f"dkimpy's own pure-Python RSA {costs['dkim_pure']:.2f} ms",
            f"{costs['dkim_pure'] / costs['dkim']:.1f}x less",
        ),
    ]


def _dkim_costs(message: bytes) -> dict[str, float]:
    """Signing as the notifier does (OpenSSL's RSA, mail.DkimSigner) and with dkimpy's own
    RSA step put back, in the same run."""
    import dkim
    import dkim.crypto

    key = Path(__file__).parents[1] / "tests" / "fixtures" / "mail" / "dkim_test_key.pem"
    signer = mail.DkimSigner(key.read_bytes(), "bench", "sistercities.example")
    fast = _cpu_ms(lambda: signer.sign(message), repeat=100)
    dkim.RSASSA_PKCS1_v1_5_sign = dkim.crypto.RSASSA_PKCS1_v1_5_sign
    try:
        pure = _cpu_ms(lambda: signer.sign(message), repeat=100)
    finally:
        dkim.RSASSA_PKCS1_v1_5_sign = mail.openssl_rsassa_sign
    return {"dkim": fast, "dkim_pure": pure}


def _cpu_ms(step, repeat: int = 300) -> float:
    samples = []
    for _ in range(repeat):
        started = time.process_time()
        step()
        samples.append(time.process_time() - started)
    return statistics.mean(samples) * 1000


def _fill(url: str) -> None:
    rng = random.Random(5)
    confirmed = utcnow() - timedelta(days=7)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(SisterLink), [
            {"partnership_id": n, "city_id": a, "sister_city_id": b, "status": "active"}
            for n, (a, b) in enumerate([(1, 11), (11, 1), (2, 12), (12, 2)], start=1)
        ])  # fmt: skip
        conn.execute(insert(Story), [
            {"post_id": n, "title": f"Story {n}: delegates, festivals and exchanges",
             "excerpt": "Delegates from both cities met for a week of… " * 6,
             "url": f"https://medium.com/p/{n:012x}", "image": "https://cdn.example/i.jpg",
             "published_at": utcnow() - timedelta(hours=n),
             "received_at": utcnow() - timedelta(hours=n),
             "city_ids": [n % 12 + 1]}
            for n in range(1, 31)
        ])  # fmt: skip
        for start in range(0, SUBSCRIBERS, 10_000):
            conn.execute(insert(Subscriber), [
                {"email": f"reader{n}@example.org", "frequency": "weekly", "weekday": 0,
                 "city_ids": [] if rng.random() < 0.4 else [rng.randint(1, 10)],
                 "status": "confirmed", "created_at": confirmed, "confirmed_at": confirmed,
                 "soft_failures": 0}
                for n in range(start, min(start + 10_000, SUBSCRIBERS))
            ])  # fmt: skip
    engine.dispose()


def _sample_messages(url: str, count: int = 500) -> list[bytes]:
    """Real personalized digests from this run's data, for the baseline to send as they are:
    the first subscribers', so big (all the news) and small (one city) ones in the run's mix."""
    settings = emails.MailSettings(SENDER, "https://sistercities.example", Tokens("k"))
    sessions = make_session_factory(make_engine(url))
    messages = []
    with sessions() as session:
        for subscriber in session.scalars(select(Subscriber).order_by(Subscriber.id).limit(count)):
            digest = digests.digest_at(session, subscriber, utcnow())
            message_id = f"<sample.{subscriber.id}@sistercities.example>"
            messages.append(emails.digest_message(digest, subscriber, message_id, settings).data)
    return messages


def _send_some(port: int, count: int, messages: list[bytes]) -> None:
    with smtplib.SMTP("127.0.0.1", port) as connection:
        for n in range(count):
            data = messages[n % len(messages)]
            connection.sendmail("news@sistercities.example", [f"base{n}@example.org"], data)


def _smtplib_rate(port: int, senders: int, messages: list[bytes]) -> float:
    each = BASELINE_MESSAGES // senders
    started = time.perf_counter()
    with ProcessPoolExecutor(senders) as pool:
        list(pool.map(_send_some, [port] * senders, [each] * senders, [messages] * senders))
    return each * senders / (time.perf_counter() - started)


def _notifier_rows(processes, tmp, url, redis_url, label, ceiling, sink_cpu) -> list[Row]:
    port, report, sink = start_smtp_sink(processes, tmp, "digests")
    env = dict(
        os.environ, REDIS_URL=redis_url, DATA_DIR=tmp, NOTIFIER_DATABASE_URL=url,
        SMTP_URL=f"smtp://127.0.0.1:{port}", MAIL_FROM=SENDER,
        SECRET_KEY="bench-secret",  # noqa: S106 - a throwaway key for a throwaway run
        PUBLIC_BASE_URL="https://sistercities.example", LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1", WORKER_CONCURRENCY=os.environ.get("BENCH_CONCURRENCY", "2"),
    )  # fmt: skip
    command = [sys.executable, "-m", "sistercities", "worker", "notifier"]
    workers = [processes.start(f"notifier-{n}", command, env) for n in range(WORKERS)]
    celery = make_celery("bench", CommonSettings(**CommonSettings.read(EnvReader(env))))
    sessions = make_session_factory(make_engine(url))

    def sent(campaign_id: int | None = None) -> int:
        """Rows sent: the digests' (None: IS NULL) or one campaign's."""
        with sessions() as session:
            return session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.status == "sent", Delivery.campaign_id == campaign_id)
            )

    time.sleep(3)  # the workers start
    rss = []
    pids = [worker.pid for worker in workers]
    cpu_before = {"workers": cpu_seconds(pids), "sink": cpu_seconds([sink]), "db": database_cpu()}
    started = time.perf_counter()
    celery.send_task("notifier.schedule_digests", args=["weekly"], kwargs={"every": True})
    while (done := sent()) < SUBSCRIBERS:
        if time.perf_counter() - started > 1800:
            raise RuntimeError(f"only {done} digests sent in 30 minutes")
        rss.append((done, sum(_rss_mb(worker.pid) for worker in workers)))
        time.sleep(1)
    elapsed = time.perf_counter() - started
    cpu_after = {"workers": cpu_seconds(pids), "sink": cpu_seconds([sink]), "db": database_cpu()}
    cpu = {name: (cpu_after[name] - cpu_before[name]) / SUBSCRIBERS * 1000 for name in cpu_after}
    campaign_elapsed = _send_campaign(celery, sessions, sent)
    processes.stop_all()  # the sink writes its report when it stops
    with open(report) as file:
        counted = json.load(file)
    quarter = next((mb for done, mb in rss if done >= SUBSCRIBERS // 4), rss[-1][1])
    rate = SUBSCRIBERS / elapsed
    campaign_rate = SUBSCRIBERS / campaign_elapsed
    return [
        Row(f"{label}: {SUBSCRIBERS:,} weekly digests by {WORKERS} notifier workers",
            f"{elapsed:.1f} s, {rate:,.0f} msg/s", f"sink ceiling {ceiling:,.0f} msg/s (4 senders)",
            f"{rate / ceiling:.0%} of it (aim 50%)"),
        Row(f"{label}: a campaign to the same {SUBSCRIBERS:,}, same workers, same sink",
            f"{campaign_elapsed:.1f} s, {campaign_rate:,.0f} msg/s", f"digests {rate:,.0f} msg/s",
            f"{campaign_rate / rate:.2f}x the digests' rate"),
        Row("at the sink (digests + campaign): messages / distinct recipients / "
            "distinct Message-IDs",
            f"{counted['messages']:,} / {counted['distinct_recipients']:,} / "
            f"{counted['distinct_message_ids']:,}"),
        Row("CPU a message: notifier workers / the sink / the database server",
            f"{cpu['workers']:.2f} / {cpu['sink']:.2f} / {cpu['db']:.2f} ms",
            f"the sink under plain smtplib {sink_cpu:.2f} ms"),
        Row("notifier workers' memory at 25% and at the end (RSS, both)",
            f"{quarter:.0f} MB / {rss[-1][1]:.0f} MB"),
    ]  # fmt: skip


CAMPAIGN_BODY = """## Write to your mayor

Our partnership with **Kuopio** turns 30 this year. Ask your mayor to
[renew it](https://sistercities.example/take-action), and come to the festival:

- exchanges for students
- a week of concerts
"""


def _send_campaign(celery, sessions, sent) -> float:
    """A campaign to every confirmed subscriber, sent now through the workers' own tasks;
    the seconds from "send" until the ledger has every row sent."""
    with session_scope(sessions) as session:
        campaign_id = campaigns.create(
            session, "Take action for Kuopio", CAMPAIGN_BODY, None, utcnow()
        ).id
    started = time.perf_counter()
    celery.send_task("notifier.schedule_campaign", args=[campaign_id])
    while (done := sent(campaign_id)) < SUBSCRIBERS:
        if time.perf_counter() - started > 1800:
            raise RuntimeError(f"only {done} campaign mails sent in 30 minutes")
        time.sleep(0.5)
    return time.perf_counter() - started


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes (all their threads) and their children."""
    total = 0
    for each in {child for pid in pids for child in (pid, *_children(pid))}:
        try:
            with open(f"/proc/{each}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def database_cpu() -> float:
    """The CPU of every PostgreSQL process on this machine (0 with SQLite): the server
    is otherwise idle while the benchmark runs."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/comm") as comm:
                if comm.read().strip() == "postgres":
                    pids.append(int(entry))
        except (FileNotFoundError, NotADirectoryError, PermissionError, ValueError):
            continue
    return cpu_seconds(pids)


def _rss_mb(pid: int) -> float:
    """The resident memory of a process and its children (the pool)."""
    total = 0
    for candidate in [pid, *_children(pid)]:
        try:
            with open(f"/proc/{candidate}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except FileNotFoundError:
        return []
