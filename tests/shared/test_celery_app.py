"""The Celery app factory's retry policy fits the broker's visibility timeout."""

from shared.celery_app import make_celery, retry_backoff_max
from shared.settings import ServiceSettings


def test_retries_wait_less_than_half_the_visibility_timeout(tmp_path):
    # A retry waits unacknowledged in a worker; held past the visibility timeout, Redis would
    # give it to a second worker too and the task would run twice.
    for timeout, expected in ((20, 10), (1800, 600), (5, 2)):
        settings = ServiceSettings.from_env(
            "notifier", {"DATA_DIR": str(tmp_path), "TASK_VISIBILITY_TIMEOUT": str(timeout)}
        )
        app = make_celery("check", settings, service="notifier")
        task = app.tasks["notifier.ping_service"]
        assert retry_backoff_max(timeout) == expected
        assert task.retry_backoff_max == expected
        assert task.retry_backoff_max < settings.task_visibility_timeout / 2 + 1
        assert task.autoretry_for  # still the shared policy
