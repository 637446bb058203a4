"""The notifier's fixtures: its own database (emptied after each test) and a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.notifier.deliveries import MailSettings
from services.notifier.tokens import Tokens
from shared.db import make_session_factory
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


@pytest.fixture
def mail_settings(tokens) -> MailSettings:
    return MailSettings("Sister Cities <news@sister.example>", "https://sister.example", tokens)
