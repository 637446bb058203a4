"""The audit log's cursor: one order across every service's entries, each page after the
last, none lost or repeated where moments tie."""

from datetime import UTC, datetime

import pytest

from shared.audit import decode_cursor, merge_pages
from shared.errors import InvalidInput


def entry(service: str, entry_id: int, second: int) -> dict:
    return {
        "service": service,
        "id": entry_id,
        "occurred_at": datetime(2026, 12, 1, 12, 0, second, tzinfo=UTC).isoformat(),
    }


def test_pages_merge_newest_first_and_the_cursor_names_the_last_shown():
    directory = [entry("directory", 2, 30), entry("directory", 1, 10)]
    blog = [entry("blog", 7, 30), entry("blog", 6, 20)]
    page = merge_pages([directory, blog], limit=3)
    assert [(e["service"], e["id"]) for e in page["results"]] == [
        ("directory", 2),  # same moment as blog 7: the service's name breaks the tie
        ("blog", 7),
        ("blog", 6),
    ]
    moment, service, entry_id = decode_cursor(page["next_cursor"])
    assert (moment.second, service, entry_id) == (20, "blog", 6)


def test_the_last_page_has_no_cursor():
    assert merge_pages([[entry("staff", 1, 0)], []], limit=1)["next_cursor"] is None


@pytest.mark.parametrize("cursor", ["", "not base64 at all!", "W10", "WyJ4IiwgImEiLCAxXQ"])
def test_a_cursor_we_did_not_give_is_refused(cursor):
    with pytest.raises(InvalidInput):
        decode_cursor(cursor)


def test_a_task_sent_from_a_task_carries_its_actor_and_request_id():
    import structlog

    from shared.actor import acting_as, staff_actor
    from shared.celery_app import pass_context_on

    ada = staff_actor(12, "Ada Lovelace", "ada@example.org")
    headers: dict = {}
    with acting_as(ada), structlog.contextvars.bound_contextvars(request_id="abc-123"):
        pass_context_on(headers=headers)
    assert headers == {"actor": ada, "request_id": "abc-123"}
    untouched: dict = {}
    pass_context_on(headers=untouched)
    assert untouched == {}


def test_a_malformed_actor_header_names_nobody():
    from shared.actor import from_header

    assert from_header({"id": "staff:12", "name": "Ada"}) == {"id": "staff:12", "name": "Ada"}
    for value in (None, "staff:12", {"id": "root"}, {"id": "staff:1 OR 1=1"}, {"id": 12}):
        assert from_header(value) is None
