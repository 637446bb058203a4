"""The staff workspace's list pages at size, through the gateway with the real workers behind
it, signed in as an admin: median and p90 of sequential requests per page, beside a bare Flask
route measured in the same run (aim: every page's median under 100 ms).

Fresh PostgreSQL databases (BENCH_DATABASE_URL's server) for the four services: GeoNames and a
slice of ../shared/data/twin_cities.csv imported into the directory (10,000 partnerships
between real cities), 20,000 stories inserted into the blog's, 100,000 subscribers and 60
campaigns into the notifier's (one sent to every confirmed subscriber, with its deliveries),
and an admin made with the staff service's own function. Then a private Redis, the four
services' workers (``sistercities worker``) and the gateway (``sistercities gateway``: gunicorn,
two processes), a sign-in by password through the sign-in form (CSRF token included), and
REQUESTS requests one after another on one keep-alive connection for each page:

- /staff/partnerships: the first page, a page 9,000 rows deep (reached by following the
  page's own "Older partnerships" link), and the busiest city's partnerships;
- /staff/subscribers: the first page, addresses starting with "q" (1 in 26), and a page
  90,000 rows deep (the page's own "Older subscribers" link, its cursor set that deep);
- /staff/stories: the first page and the next (its own link);
- /staff/campaigns, and the page of a campaign: to every confirmed subscriber (a draft, and
  one sent, with its 80,000 deliveries), and to the followers of 20 cities (a draft).

    python -m benchmarks.workspace_pages       # or: python -m benchmarks --only workspace
"""

from __future__ import annotations

import html
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
import sqlalchemy as sa

from benchmarks.bench_search import MIGRATIONS as DIRECTORY_MIGRATIONS
from benchmarks.bench_search import ROOT, TWIN_CITIES
from benchmarks.processes import (
    free_port,
    fresh_postgres,
    running_processes,
    serve,
    start_redis,
    wait_http_ok,
)
from benchmarks.report import Row, table
from services.blog.models import Post
from services.directory.cities_import import import_cities
from services.directory.models import Partnership
from services.directory.partnerships_import import import_partnerships
from services.notifier import campaigns
from services.notifier.models import Campaign, Delivery, Subscriber
from services.staff import accounts
from shared.actor import acting_as, cli_actor
from shared.db import make_engine, make_session_factory, session_scope
from shared.events import utcnow
from shared.migrations import upgrade

REQUESTS = 100
WARM_UP = 5
AIM_MEDIAN_MS = 100.0
# Lines of twin_cities.csv that make about 10,000 partnerships (some lines name a city
# GeoNames does not have, or repeat a pair).
TWIN_CITY_LINES = 10_400
STORIES = 20_000
SUBSCRIBERS = 100_000
CAMPAIGNS = 60
PARTNERSHIPS_DEEP = 9_000
SUBSCRIBERS_DEEP = 90_000
# 80% confirmed: a campaign to everyone counts 80,000 (the mix of workspace_lists.py, a third
# each, would make it 33,334).
STATUS_MIX = ("confirmed",) * 8 + ("pending", "unsubscribed")
ADMIN_EMAIL = "bench-admin@example.org"
# A fresh password each run: the member lives in a database dropped at the end.
ADMIN_PASSWORD = secrets.token_urlsafe(16)
SERVICES = ("directory", "blog", "notifier", "staff")


def load_directory(url: str) -> tuple[int, int]:
    """GeoNames, then the first lines of twin_cities.csv: how many partnerships, and the
    city with the most of them."""
    upgrade(DIRECTORY_MIGRATIONS, url)
    sessions = make_session_factory(make_engine(url))
    with session_scope(sessions) as session:
        import_cities(session)
    lines = TWIN_CITIES.read_text(encoding="utf-8").splitlines(keepends=True)
    with sessions() as session:
        import_partnerships(
            session, "".join(lines[: TWIN_CITY_LINES + 1]), "twin_cities.csv", commit=session.commit
        )
        session.commit()
        count = session.scalar(sa.select(sa.func.count()).select_from(Partnership))
        ends = sa.union_all(
            sa.select(Partnership.city_a_id.label("city")),
            sa.select(Partnership.city_b_id.label("city")),
        ).subquery()
        busiest = session.scalar(
            sa.select(ends.c.city).group_by(ends.c.city).order_by(sa.func.count().desc()).limit(1)
        )
    return count, busiest


def load_blog(url: str) -> None:
    upgrade(ROOT / "services" / "blog" / "migrations", url)
    now = utcnow()
    with make_engine(url).begin() as conn:
        conn.execute(
            sa.insert(Post.__table__),
            [
                dict(
                    key=f"bench-{i}",
                    title=f"Delegation visit number {i}",
                    url=f"https://medium.com/sister-cities/bench-{i}",
                    excerpt="A week of exchanges " * 8,
                    content_html="<p>A paragraph of the story.</p>",
                    tags=[],
                    reading_minutes=4,
                    published_at=now - timedelta(minutes=i),
                    content_hash=f"h{i}",
                    first_seen_at=now,
                    changed_at=now,
                    city_ids=[],
                    hidden=i % 50 == 0,
                    announced=True,
                )
                for i in range(STORIES)
            ],
        )
        conn.execute(sa.text("ANALYZE posts"))


def load_notifier(url: str, busiest_city: int) -> dict[str, int]:
    """Subscribers as workspace_lists.py makes them (a quarter following all the news, the
    rest one of cities 1 to 2,000) but most of them confirmed, as on a list in use; and
    campaigns: the ids of one sent to everyone, a draft to everyone and one to 20 cities."""
    upgrade(ROOT / "services" / "notifier" / "migrations", url)
    engine = make_engine(url)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Subscriber.__table__),
            [
                dict(
                    email=f"{chr(97 + i % 26)}{'X' if i % 3 else 'x'}{i}@host{i % 5000}.org",
                    frequency="weekly",
                    weekday=0,
                    city_ids=[i % 2000 + 1] if i % 4 else [],
                    status=STATUS_MIX[i % len(STATUS_MIX)],
                    created_at=now,
                    soft_failures=0,
                    confirmations=1,
                )
                for i in range(SUBSCRIBERS)
            ],
        )
    sessions = make_session_factory(engine)
    everyone = {"city_ids": [], "country_codes": [], "sisters": False}
    with acting_as(cli_actor()), session_scope(sessions) as session:
        made = {}
        for n in range(CAMPAIGNS):
            audience = everyone if n in (0, 1) else {**everyone, "city_ids": [busiest_city]}
            if n == 2:  # followers of 20 cities: each confirmed subscriber's list is read
                audience = {**everyone, "city_ids": list(range(1, 21))}
            body = f"Write to your council about the twinning, number {n}.\n\n" * 5
            campaign = campaigns.create(session, f"Take action {n}", body, audience, now)
            made[n] = campaign.id
        sent = session.get(Campaign, made[0])
        sent.status, sent.handed_out_at, sent.sent_at = "sent", now, now
        confirmed = campaigns.audience_of(session, everyone)
        session.execute(
            sa.insert(Delivery.__table__),
            [
                dict(
                    subscriber_id=subscriber_id,
                    period=f"campaign:{sent.id}",
                    status="sent",
                    message_id=f"<c{sent.id}.{subscriber_id}@bench>",
                    created_at=now,
                    sent_at=now,
                    campaign_id=sent.id,
                )
                for subscriber_id in confirmed
            ],
        )
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
    return {"sent": made[0], "draft": made[1], "cities": made[2]}


def add_admin(url: str) -> None:
    upgrade(ROOT / "services" / "staff" / "migrations", url)
    sessions = make_session_factory(make_engine(url))
    with acting_as(cli_actor()), session_scope(sessions) as session:
        accounts.add_member(session, ADMIN_EMAIL, "admin", utcnow(), "Bench Admin", ADMIN_PASSWORD)


def sign_in(base: str) -> requests.Session:
    """An admin's session, signed in through the form as a person would."""
    client = requests.Session()
    form = client.get(f"{base}/staff/sign-in", timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    answer = client.post(
        f"{base}/staff/sign-in",
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    if answer.status_code != 303 or not answer.headers["Location"].endswith("/staff"):
        raise RuntimeError(f"signing in failed: {answer.status_code} {answer.text[:300]}")
    return client


def link(page: requests.Response, text: str) -> str:
    """The path of the page's link with this text."""
    found = re.search(r'<a href="([^"]+)">' + re.escape(text) + "</a>", page.text)
    if found is None:
        raise RuntimeError(f"{page.url} has no link {text!r}")
    return html.unescape(found.group(1))


def with_param(path: str, **params) -> str:
    parts = urlsplit(path)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | params
    return f"{parts.path}?{urlencode(query)}"


def timed(client: requests.Session, url: str, rows: str | None) -> tuple[float, float]:
    """Median and p90 of REQUESTS requests one after another, in ms. Each answer must be the
    page (200, no redirect to the sign-in), with rows on it when ``rows`` names them."""
    latencies = []
    for n in range(WARM_UP + REQUESTS):
        started = time.perf_counter()
        answer = client.get(url, allow_redirects=False, timeout=30)
        elapsed = (time.perf_counter() - started) * 1000
        if answer.status_code != 200 or (rows and rows not in answer.text):
            raise RuntimeError(f"{url} answered {answer.status_code}: {answer.text[:300]}")
        if n >= WARM_UP:
            latencies.append(elapsed)
    return statistics.median(latencies), statistics.quantiles(latencies, n=10)[-1]


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def measure(seconds: float = 10.0) -> list[Row]:
    """``seconds`` is not used: each page gets REQUESTS requests, whatever they take."""
    if not TWIN_CITIES.exists():
        return [Row("skipped", f"the data set is not at {TWIN_CITIES}")]
    made = {service: fresh_postgres() for service in SERVICES}
    try:
        if any(database is None for database in made.values()):
            return [Row("skipped", "no PostgreSQL server (BENCH_DATABASE_URL)")]
        urls = {service: database[0] for service, database in made.items()}
        return _measure(urls)
    finally:
        for database in made.values():
            if database is not None:
                database[1]()


def _measure(urls: dict[str, str]) -> list[Row]:
    started = time.monotonic()
    partnerships, busiest = load_directory(urls["directory"])
    load_blog(urls["blog"])
    campaign = load_notifier(urls["notifier"], busiest)
    add_admin(urls["staff"])
    print(f"loaded in {time.monotonic() - started:.0f} s", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp, running_processes() as processes:
        redis_url = start_redis(processes)
        env = dict(
            os.environ,
            REDIS_URL=redis_url,
            DATA_DIR=tmp,
            LOG_LEVEL="warning",
            WORKER_POOL="solo",
            PYTHONUNBUFFERED="1",
            CACHE_SECONDS="0",
            **{f"{service.upper()}_DATABASE_URL": url for service, url in urls.items()},
        )
        me = [sys.executable, "-m", "sistercities"]
        for service in SERVICES:
            processes.start(service, [*me, "worker", service], env)
        port = free_port()
        processes.start("gateway", [*me, "gateway"], dict(env, PORT=str(port)))
        base = f"http://127.0.0.1:{port}"
        bare = serve(processes, "bare", "benchmarks.rpc_apps:bare_app()", env)
        wait_http_ok(f"{bare}/ping", "bare")
        # Every service's interactive lane answers a ping.
        wait_http_ok(f"{base}/readyz", "the gateway and the workers", 180)

        client = sign_in(base)
        pages = _pages(client, base, busiest, campaign)
        load_before = load_average()
        bare_median, bare_p90 = timed(requests.Session(), f"{bare}/ping", None)
        rows = [
            Row(
                "bare Flask route returning a constant (gunicorn, 2 processes)",
                f"median {bare_median:.1f} ms, p90 {bare_p90:.1f} ms",
                "the floor",
            )
        ]
        for label, (path, marker) in pages.items():
            median, p90 = timed(client, base + path, marker)
            rows.append(
                Row(
                    f"{label} `{path}`",
                    f"median {median:.1f} ms, p90 {p90:.1f} ms",
                    f"bare route median {bare_median:.1f} ms; aim median < {AIM_MEDIAN_MS:.0f} ms",
                    "meets" if median < AIM_MEDIAN_MS else "misses",
                )
            )
        rows.append(
            Row(
                "data and machine",
                f"{partnerships:,} partnerships, {STORIES:,} stories, {SUBSCRIBERS:,} subscribers"
                f", {CAMPAIGNS} campaigns; {REQUESTS} sequential requests a page, PostgreSQL",
                f"load average before {load_before}, after {load_average()}",
            )
        )
    return rows


def _pages(
    client: requests.Session, base: str, busiest: int, campaign: dict[str, int]
) -> dict[str, tuple[str, str]]:
    """Each page to time: its path, and a piece of text a full page of it has."""
    partnerships = "/staff/partnerships"
    deep = partnerships
    for _ in range(PARTNERSHIPS_DEEP // 50):  # the workspace's page of partnerships
        deep = link(client.get(base + deep, timeout=10), "Older partnerships")
    subscribers = "/staff/subscribers"
    older = link(client.get(base + subscribers, timeout=10), "Older subscribers")
    newest = int(parse_qs(urlsplit(older).query)["before"][0]) + 50
    stories = "/staff/stories"
    next_stories = link(client.get(base + stories, timeout=10), "Older stories")
    row = 'href="/staff/partnerships/'
    return {
        "partnerships, first page": (partnerships, row),
        f"partnerships, {PARTNERSHIPS_DEEP:,} rows deep": (deep, row),
        "partnerships of the busiest city": (f"{partnerships}?city={busiest}", row),
        "subscribers, first page": (subscribers, 'href="/staff/subscribers/'),
        'subscribers starting with "q"': (f"{subscribers}?q=q", 'href="/staff/subscribers/'),
        f"subscribers, {SUBSCRIBERS_DEEP:,} rows deep": (
            with_param(older, before=newest - SUBSCRIBERS_DEEP),
            'href="/staff/subscribers/',
        ),
        "stories, first page": (stories, 'href="/staff/stories/'),
        "stories, second page": (next_stories, 'href="/staff/stories/'),
        "campaigns, first page": ("/staff/campaigns", 'href="/staff/campaigns/'),
        "a draft campaign to every confirmed subscriber": (
            f"/staff/campaigns/{campaign['draft']}",
            "Take action 1",
        ),
        "a draft campaign to the followers of 20 cities": (
            f"/staff/campaigns/{campaign['cities']}",
            "Take action 2",
        ),
        "a campaign sent to every confirmed subscriber": (
            f"/staff/campaigns/{campaign['sent']}",
            "Take action 0",
        ),
    }


def main() -> None:
    print(f"running with load average {load_average()}", file=sys.stderr)
    print(table(measure()))


if __name__ == "__main__":
    main()
