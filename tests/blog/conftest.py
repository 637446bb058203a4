"""The blog's fixtures: its own database (emptied after each test), a local feed server, and
the real feeds under ../shared/corpora/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.db import make_session_factory
from tests.conftest import SHARED_DIR
from tests.feed_server import FeedServer

CORPORA = SHARED_DIR / "corpora"
MEDIUM = CORPORA / "medium"
needs_corpora = pytest.mark.skipif(
    not MEDIUM.is_dir(), reason=f"the real feed captures are not at {CORPORA}"
)


@pytest.fixture
def blog_sessions(clean_databases):
    return make_session_factory(clean_databases["blog"])


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def medium_feed(name: str) -> bytes:
    return (MEDIUM / name).read_bytes()
