"""Staff's command line for partnerships, run as staff run it: a process of its own, changing
what the admin API's partnership routes change, with the same events."""

import os
import pty
import subprocess
import sys

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from services.directory.cli import directory_cli
from services.directory.models import outbox_events
from tests.conftest import add_test_cities, count_rows

pytestmark = pytest.mark.integration


def sistercities(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sistercities", "directory", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def partnership(engine, partnership_id: int):
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT since, status, source, notes FROM partnerships WHERE id = :id"),
            {"id": partnership_id},
        ).first()


def test_add_update_and_remove_a_partnership(stack_env, clean_databases):
    directory = clean_databases["directory"]
    alpha, beta = add_test_cities(
        directory, [("Alphaville", "FR", 48.8, 2.3, 120_000), ("Betaburg", "DE", 52.5, 13.4, 900)]
    )

    added = sistercities(
        stack_env, "add-partnership", str(alpha), str(beta),
        "--since", "1990", "--source", "city council", "--notes", "Twinned after the war",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    partnership_id = count_rows(directory, "SELECT max(id) FROM partnerships")
    assert added.stdout == (
        f"added partnership {partnership_id}: Alphaville (FR) and Betaburg (DE), since 1990, "
        "active, source: city council\n"
    )
    assert tuple(partnership(directory, partnership_id)) == (
        1990, "active", "city council", "Twinned after the war"
    )  # fmt: skip

    again = sistercities(stack_env, "add-partnership", str(beta), str(alpha))
    assert again.returncode == 1 and "already partners" in again.stderr

    updated = sistercities(
        stack_env, "update-partnership", str(partnership_id),
        "--status", "inactive", "--clear", "since", "--clear", "notes",
    )  # fmt: skip
    assert updated.returncode == 0, updated.stderr
    assert "year unknown, inactive" in updated.stdout
    assert tuple(partnership(directory, partnership_id)) == (
        None, "inactive", "city council", None
    )  # fmt: skip

    removed = sistercities(stack_env, "remove-partnership", str(partnership_id))
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == f"removed partnership {partnership_id}\n"
    assert partnership(directory, partnership_id) is None
    # Announced as the admin API announces them (the relay delivers them).
    with directory.connect() as conn:
        payloads = conn.scalars(
            select(outbox_events.c.payload)
            .where(outbox_events.c.event_type == "directory.partnership_changed")
            .order_by(outbox_events.c.id)
        ).all()
    assert [payload["change"] for payload in payloads] == ["created", "updated", "deleted"]
    assert {city["name"] for city in payloads[0]["cities"]} == {"Alphaville", "Betaburg"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add-partnership", "999998", "999999"], "no city with id 999998"),
        (["update-partnership", "999999", "--status", "active"], "no partnership with id 999999"),
        (["remove-partnership", "999999"], "no partnership with id 999999"),
    ],
    ids=["unknown-city", "unknown-partnership", "remove-unknown"],
)
def test_what_is_not_there_is_refused(stack_env, clean_databases, args, message):
    result = sistercities(stack_env, *args)
    assert result.returncode == 1
    assert message in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add-partnership", "1", "2", "--status", "friendly"], "'friendly' is not one of"),
        (["update-partnership", "1"], "nothing to change"),
        (["update-partnership", "1", "--since", "1990", "--clear", "since"], "together"),
    ],
    ids=["bad-status", "no-change", "set-and-clear"],
)
def test_wrong_usage_is_refused_before_anything_is_read(args, message):
    result = CliRunner().invoke(directory_cli, args)
    assert result.exit_code == 2
    assert message in result.output


def _on_a_terminal(env, *args) -> tuple[int, str]:
    """Run a directory command with its output on a pseudo-terminal, as staff run it."""
    terminal, child = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "sistercities", "directory", *args],
        env=env, stdin=subprocess.DEVNULL, stdout=child, stderr=subprocess.STDOUT,
    )  # fmt: skip
    os.close(child)
    output = bytearray()
    while True:
        try:
            chunk = os.read(terminal, 65536)
        except OSError:  # the child side closed
            break
        if not chunk:
            break
        output += chunk
    os.close(terminal)
    return process.wait(timeout=120), output.decode("utf-8", "replace")


def test_import_cities_shows_a_progress_bar_on_a_terminal_and_reports_its_counts(
    stack_env, clean_databases
):
    returncode, output = _on_a_terminal(stack_env, "import-cities", "--min-population", "15000")
    assert returncode == 0, output
    assert "cities" in output and "━" in output  # rich's bar
    assert "cities read:             34,006" in output
    assert "cities created:          34,006" in output
    assert count_rows(clean_databases["directory"], "SELECT count(*) FROM cities") == 34_006

    again = sistercities(stack_env, "import-cities", "--min-population", "15000")
    assert again.returncode == 0, again.stderr
    assert "cities created:          0\n" in again.stdout
    assert "cities already present:  34,006" in again.stdout
    assert "━" not in again.stdout  # no bar in a pipe


def test_import_cities_refuses_a_population_floor_it_has_no_file_for(stack_env, clean_databases):
    result = sistercities(stack_env, "import-cities", "--min-population", "100")
    assert result.returncode == 1
    assert "must be one of 500, 1000, 5000, 15000" in result.stderr
    assert "Traceback" not in result.stderr
