"""Logging set up again in the same process (the test suite does it, in any order) still
reaches structlog's capture_logs from a logger used before."""

import logging

import pytest
import structlog
import structlog.testing

from shared.logs import configure_logging, get_logger
from shared.settings import ServiceSettings


@pytest.fixture
def restored_logging():
    config, root = structlog.get_config(), logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**config)
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_logger_used_before_logging_is_configured_again_is_still_captured(
    tmp_path, restored_logging
):
    settings = ServiceSettings.from_env("notifier", {"DATA_DIR": str(tmp_path)})
    configure_logging(settings, "gateway")
    log = get_logger("tests.shared.used_early")
    log.info("first line")
    configure_logging(settings, "mailbox")
    with structlog.testing.capture_logs() as lines:
        log.info("mail_bounce_ignored")
    assert [line["event"] for line in lines] == ["mail_bounce_ignored"]
