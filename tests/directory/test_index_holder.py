"""The worker's index holder on the real database: a story's cities are matched by the
directory as it is when the question arrives, not as the last reload saw it."""

from __future__ import annotations

import threading

from services.directory.places import match_places
from services.directory.search_index import IndexHolder, ReloadPacing
from shared.db import make_session_factory
from tests.conftest import add_test_cities

NEVER = 3600.0  # the watcher thread does not reload during the test: only the caller can
CITY = ("Vorbeck Harbour", "NZ", -41.2, 174.8, 52_000)
TEXT = "Delegates from Vorbeck Harbour met their partners."


def found(index) -> list[str]:
    return [city["name"] for city in match_places(index, TEXT)["results"]]


def holder_of(engine, reloads: list) -> IndexHolder:
    return IndexHolder(make_session_factory(engine), check_every=NEVER, on_reload=reloads.append)


def test_a_city_added_before_the_question_is_in_the_answer(clean_databases):
    reloads = []
    holder = holder_of(clean_databases["directory"], reloads)
    before = holder.get()
    add_test_cities(clean_databases["directory"], [CITY])

    # What a visitor's search gets until the watcher reloads: the index it has.
    assert found(holder.get()) == []
    assert found(holder.current()) == ["Vorbeck Harbour"]
    assert holder.current().version > before.version
    assert len(reloads) == 1  # caught up once, then current
    assert found(holder.get()) == ["Vorbeck Harbour"]


def test_callers_catching_up_at_once_build_one_index(clean_databases):
    reloads = []
    holder = holder_of(clean_databases["directory"], reloads)
    holder.get()
    add_test_cities(clean_databases["directory"], [CITY])
    start = threading.Barrier(4)
    answers = []

    def ask():
        start.wait()
        answers.append(found(holder.current()))

    callers = [threading.Thread(target=ask) for _ in range(4)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert answers == [["Vorbeck Harbour"]] * 4
    assert len(reloads) == 1


def test_the_watcher_rebuilds_once_changes_hold_still_or_have_waited_long_enough():
    pacing = ReloadPacing(settle=3.0, max_behind=30.0)
    assert not pacing.due(5, 5, now=0.0)
    # A staff edit: the version moves once and holds still.
    assert [pacing.due(5, 6, now=t) for t in (1.0, 2.0, 3.0, 4.0)] == [False] * 3 + [True]
    assert not pacing.due(6, 6, now=5.0)
    # An import: a new version every two seconds; rebuilt once it has been behind 30 s.
    behind = [pacing.due(6, 10 + t // 2, now=float(t)) for t in range(10, 41)]
    assert behind == [False] * 30 + [True]
    assert not pacing.due(25, 26, now=41.0)  # a new wait begins after the rebuild
