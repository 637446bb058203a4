"""The routing table puts each task on the lane it belongs to: what a visitor waits for on the
interactive lane, everything else on the background lane."""

import ast
import importlib
from pathlib import Path

import pytest

from shared.routing import (
    AWAITED_TASKS,
    BACKGROUND,
    BACKGROUND_TASKS,
    INTERACTIVE,
    SERVICES,
    lane_of,
    lane_queue,
    lane_queues,
    queue_for_task,
)
from sistercities.beat import collect_schedule

GATEWAY = Path(__file__).resolve().parents[2] / "services" / "gateway"
# Staff wait for these through the gateway, but they run for a minute or more.
LONG_STAFF_CALLS = {"directory.import_partnerships", "notifier.resend_unconfirmed_digests"}


def registered_tasks() -> set[str]:
    names = set()
    for service in SERVICES:
        importlib.import_module(f"services.{service}.tasks")
        app = importlib.import_module(f"services.{service}.worker").app
        names |= {name for name in app.tasks if name.startswith(f"{service}.")}
    return names


def tasks_the_gateway_calls() -> set[str]:
    """Every task name the gateway's code spells out ("<service>.<verb>_<noun>")."""
    names = set()
    for path in GATEWAY.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                service, _, verb = node.value.partition(".")
                if service in SERVICES and verb.replace("_", "").isalpha():
                    names.add(node.value)
    return names


def test_every_background_task_is_a_task_of_its_service():
    assert not BACKGROUND_TASKS - registered_tasks()


def test_each_lane_has_a_queue_of_its_own():
    queues = [
        lane_queue(service, lane) for service in SERVICES for lane in (INTERACTIVE, BACKGROUND)
    ]
    assert len(set(queues)) == len(queues)
    assert queue_for_task("notifier.create_subscription") == "notifier"
    assert queue_for_task("notifier.handle_events") == "notifier.background"


def test_mail_someone_waits_for_has_a_queue_the_background_workers_take_in_turn():
    assert not AWAITED_TASKS - (BACKGROUND_TASKS & registered_tasks())
    assert lane_queues("notifier", BACKGROUND) == (
        "notifier.background",
        "notifier.background.awaited",
    )
    for name in AWAITED_TASKS:
        assert queue_for_task(name) == "notifier.background.awaited", name
    for name in ("notifier.send_digests", "notifier.send_campaign_batch"):
        assert queue_for_task(name) == "notifier.background", name
    # Services that send no such mail keep one queue a lane.
    assert lane_queues("directory", BACKGROUND) == ("directory.background",)
    assert lane_queues("notifier", INTERACTIVE) == ("notifier",)


def test_what_the_gateway_waits_for_is_interactive():
    called = tasks_the_gateway_calls()
    assert "directory.search_cities" in called and "notifier.create_subscription" in called
    for name in called - LONG_STAFF_CALLS:
        assert lane_of(name) == INTERACTIVE, name
    for name in LONG_STAFF_CALLS:
        assert lane_of(name) == BACKGROUND, name


def test_events_and_periodic_work_are_background():
    for service in SERVICES:
        assert lane_of(f"{service}.handle_events") == BACKGROUND
    for entry in collect_schedule().values():
        assert lane_of(entry["task"]) == BACKGROUND, entry["task"]


def test_a_task_of_no_service_has_no_queue():
    with pytest.raises(ValueError, match="service name"):
        queue_for_task("mailer.send_mail")
