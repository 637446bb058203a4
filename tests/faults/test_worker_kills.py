"""Each worker killed with SIGKILL in the middle of its work and started again: what it had
begun is finished by the restarted worker (its messages come back after the visibility
timeout), and nothing is done twice — every partnership stored once, every post stored once
and announced once, every digest delivered once at the SMTP server."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

import services.directory
from services.directory.import_lock import LOCK_SECONDS
from services.directory.partnerships_import import import_partnerships
from shared.db import make_engine, make_session_factory
from shared.migrations import upgrade
from shared.settings import CommonSettings, EnvReader
from tests.conftest import TWIN_CITIES, needs_twin_cities
from tests.event_batches import BATCH, in_batches, partnership_events, send_batches
from tests.faults import workloads
from tests.faults.conftest import VISIBILITY_TIMEOUT
from tests.feed_server import FeedServer
from tests.stack import wait_for

pytestmark = pytest.mark.faults

SUBSCRIBERS = 2000
FEEDS = 200


def test_a_notifier_killed_mid_send_neither_repeats_nor_skips_a_digest(faults):
    addresses = workloads.start_digest_send(faults, SUBSCRIBERS)
    kill_the_notifier_mid_send(faults, addresses, "digests")


def test_a_notifier_killed_mid_campaign_sends_it_once_to_each_follower(faults):
    followers = workloads.start_campaign_send(faults, SUBSCRIBERS)
    # Exactly the followers (not the other city's followers), none twice.
    kill_the_notifier_mid_send(faults, followers, "campaign mails")
    wait_for(lambda: faults.count("notifier", "SELECT count(*) FROM campaigns WHERE status = "
                                  "'sent'") == 1, what="the campaign to be sent")  # fmt: skip


def kill_the_notifier_mid_send(faults, addresses: set[str], what: str) -> None:
    """A fifth of the way into a send through the ledger, the notifier is SIGKILLed and
    started again: every address gets its mail once, and nobody else gets one."""
    notifier = faults.engines["notifier"]
    workloads.wait_until_under_way(lambda: workloads.mail_count(faults), SUBSCRIBERS, what)
    faults.processes.kill("notifier")
    at_kill = len(faults.mail.received)
    assert at_kill < SUBSCRIBERS, "the send finished before the kill: the test proves nothing"
    faults.start("notifier")

    # The batches the dead worker held come back after the visibility timeout.
    wait_for(
        lambda: workloads.digests_sent(notifier) == SUBSCRIBERS,
        timeout=120 + VISIBILITY_TIMEOUT,
        what=f"all {what} to be sent",
    )
    workloads.assert_each_digest_once(faults, addresses)
    assert at_kill < len(faults.mail.received)
    faults.say(f"notifier kill: {at_kill} of {SUBSCRIBERS} {what} out at the kill, "
               f"{len(faults.mail.received)} at the server after the restart")  # fmt: skip


EVENT_BATCHES = 40


def test_a_notifier_killed_mid_batch_applies_each_event_once(faults):
    """Batches of events (as the relay sends them) with the notifier SIGKILLed while it
    applies them: the batch it held commits nothing, comes back after the visibility timeout
    and is applied then; no event is applied twice."""
    events = partnership_events(BATCH * EVENT_BATCHES)
    send_batches(CommonSettings(**CommonSettings.read(EnvReader(faults.env))), in_batches(events))
    handled = "SELECT count(*) FROM handled_events"
    workloads.wait_until_under_way(lambda: faults.count("notifier", handled), len(events),
                                   "the events")  # fmt: skip
    faults.processes.kill("notifier")
    at_kill = faults.count("notifier", handled)
    assert at_kill < len(events), "every batch was applied before the kill: it proves nothing"
    faults.start("notifier")
    wait_for(lambda: faults.count("notifier", handled) == len(events),
             timeout=120 + VISIBILITY_TIMEOUT, what="every event to be applied")  # fmt: skip
    assert faults.count("notifier", "SELECT count(*) FROM sister_links") == 2 * len(events)
    assert faults.count("notifier", "SELECT count(*) FROM partnership_news") == len(events)
    faults.say(f"notifier kill mid-batch: {at_kill} of {len(events)} events applied at the "
               f"kill; after the restart each once")  # fmt: skip


def test_a_blog_worker_killed_mid_cycle_stores_and_announces_each_post_once(faults):
    workloads.add_known_cities(faults)
    with FeedServer() as server:
        total = workloads.start_polling_cycle(faults, server, FEEDS)
        workloads.wait_until_under_way(
            lambda: faults.count("blog", workloads.POSTS), total, "the polling cycle"
        )
        faults.processes.kill("blog")
        at_kill = faults.count("blog", workloads.POSTS)
        assert at_kill < total, "the cycle finished before the kill: the test proves nothing"
        faults.start("blog")
        # Fetches the dead worker held come back after the visibility timeout.
        wait_for(
            lambda: faults.count("blog", workloads.POSTS) == total,
            timeout=120 + VISIBILITY_TIMEOUT,
            what="every post to be stored",
        )
    workloads.assert_each_post_announced_once(faults, total)
    unlinked = "SELECT count(*) FROM posts WHERE city_ids::text = '[]'"
    assert faults.count("blog", unlinked) == 0
    faults.say(f"blog kill: {at_kill} of {total} posts stored at the kill; after the restart "
               f"{total} stored, each announced once")  # fmt: skip


IMPORT_ROWS = 2500  # more than one commit (one per 1,000 partnerships): the kill splits them
IMPORT_URL = "/api/v1/admin/partnerships/import"
PAIRS = """SELECT a.name, a.country_code, b.name, b.country_code, p.since, p.status
           FROM partnerships p JOIN cities a ON a.id = p.city_a_id
           JOIN cities b ON b.id = p.city_b_id"""


def stored_pairs(engine) -> list[tuple]:
    """Every stored partnership as its two places (either way round) and its details."""
    with engine.connect() as conn:
        return [
            (frozenset([(a, ca), (b, cb)]), since, status)
            for a, ca, b, cb, since, status in conn.execute(text(PAIRS))
        ]


def reference_import(faults, content: str) -> tuple[list[tuple], int]:
    """The same file imported with no fault, into a database of its own: what must be kept."""
    url = faults.postgres.create_databases(["sc_reference"])["sc_reference"]
    upgrade(Path(services.directory.__file__).parent / "migrations", url)
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            import_partnerships(session, content, "twin_cities.csv", commit=session.commit)
            session.commit()
        with engine.connect() as conn:
            cities = conn.execute(text("SELECT count(*) FROM cities")).scalar_one()
        return stored_pairs(engine), cities
    finally:
        engine.dispose()


def upload(faults, content: str):
    files = {"file": ("twin_cities.csv", content.encode(), "text/csv")}
    return faults.post(IMPORT_URL, files=files, timeout=VISIBILITY_TIMEOUT + 60)


@needs_twin_cities
def test_a_directory_killed_mid_import_stores_every_partnership_once(faults):
    with TWIN_CITIES.open(encoding="utf-8") as handle:
        content = "".join(line for _, line in zip(range(IMPORT_ROWS + 1), handle, strict=False))
    expected_pairs, expected_cities = reference_import(faults, content)
    directory = faults.engines["directory"]
    answers = []
    sending = threading.Thread(target=lambda: answers.append(upload(faults, content)))
    sending.start()
    try:
        wait_for(lambda: faults.count("directory", PARTNERSHIPS) > 0, timeout=120, interval=0.02,
                 what="the import's first batch to commit")  # fmt: skip
        faults.processes.kill("directory")
        at_kill = faults.count("directory", PARTNERSHIPS)
    finally:
        sending.join()
    assert at_kill < len(expected_pairs), "the import finished before the kill"
    # The gateway gave up on the dead worker: 503, not a hang and not a 500. The message has
    # expired with the call, so no worker picks the import up again by itself.
    assert answers[0].status_code == 503, answers[0].text
    faults.start("directory")
    faults.wait_until_answers("directory")

    # Staff send the file again; the dead import's lock lasts up to LOCK_SECONDS (409 till then).
    def resent():
        answer = upload(faults, content)
        return None if answer.status_code == 409 else answer

    report = wait_for(resent, timeout=LOCK_SECONDS + 60, interval=1,
                      what="the import to be accepted again").json()  # fmt: skip
    assert report["partnerships_created"] == len(expected_pairs) - at_kill, report
    assert report["cities_created"] == 0  # every place was made by the killed import, once
    kept = stored_pairs(directory)
    assert sorted(kept, key=repr) == sorted(expected_pairs, key=repr)
    assert faults.count("directory", "SELECT count(*) FROM cities") == expected_cities
    # Each partnership announced once, and heard once by the notifier.
    assert faults.count("directory", PARTNERSHIP_EVENTS) == len(expected_pairs)
    wait_for(lambda: faults.count("notifier", "SELECT count(*) FROM partnership_news")
             == len(expected_pairs), timeout=60, what="the notifier to hear of each")  # fmt: skip
    again = upload(faults, content).json()
    assert (again["partnerships_created"], again["cities_created"]) == (0, 0)
    faults.say(f"directory kill: {at_kill} of {len(expected_pairs)} partnerships committed at "
               f"the kill; after the resend {len(kept)}, each once")  # fmt: skip


PARTNERSHIPS = "SELECT count(*) FROM partnerships"
PARTNERSHIP_EVENTS = (
    "SELECT count(*) FROM outbox_events WHERE event_type = 'directory.partnership_changed'"
)
