"""The notifier's fixtures: its own database (emptied after each test) and a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, insert

from services.notifier import ledger
from services.notifier.emails import MailSettings
from services.notifier.models import Delivery, Story, Subscriber
from services.notifier.tokens import Tokens
from shared.db import make_session_factory
from shared.events import utcnow
from tests.mail_sink import MailSink

KEY = "test-signing-key-not-secret"


@pytest.fixture
def notifier_sessions(clean_databases):
    return make_session_factory(clean_databases["notifier"])


@pytest.fixture
def sink() -> Iterator[MailSink]:
    server = MailSink().start()
    yield server
    server.stop()


@pytest.fixture
def tokens() -> Tokens:
    return Tokens(KEY)


def make_mail_settings() -> MailSettings:
    """The tests' sender and site, also for a process a test starts."""
    return MailSettings(
        "Sister Cities <news@sister.example>", "https://sister.example", Tokens(KEY)
    )


@pytest.fixture
def mail_settings() -> MailSettings:
    return make_mail_settings()


def add_unconfirmed_digest(engine: Engine, email: str, period: str, sent_ago: timedelta) -> str:
    """A confirmed subscriber following everything, a story for them, and their digest of
    ``period`` marked sent ``sent_ago`` with no 250 recorded, as a crash at its last line
    leaves it (``killed_at_the_last_line`` makes that state for real). Returns the
    Message-ID."""
    now = utcnow()
    confirmed = now - timedelta(days=2)
    with engine.begin() as conn:
        subscriber_id = conn.execute(insert(Subscriber).values(
            email=email, frequency="weekly", weekday=0, city_ids=[], status="confirmed",
            created_at=confirmed, confirmed_at=confirmed, soft_failures=0,
        ).returning(Subscriber.id)).scalar_one()  # fmt: skip
        message_id = ledger.message_id(subscriber_id, period, "sister.example")
        conn.execute(insert(Story).values(
            post_id=77, title="Lyon and Beersheba sign their charter", excerpt="…", image=None,
            url="https://medium.com/p/0000000000ab", published_at=now, city_ids=[],
            received_at=now - sent_ago - timedelta(hours=1),
        ))  # fmt: skip
        conn.execute(insert(Delivery).values(
            subscriber_id=subscriber_id, period=period, status="sent", message_id=message_id,
            stories=1, attempts=1, created_at=now - sent_ago, sent_at=now - sent_ago,
        ))  # fmt: skip
    return message_id
