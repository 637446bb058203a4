"""Story links: precision and recall of the cities found in a labeled corpus of story passages.

Loads GeoNames and ../shared/data/twin_cities.csv into a fresh SQLite file, then runs every
passage of tests/fixtures/story_links/passages.json through today's matcher and through the
matcher as it was before issue 14 (benchmarks/baseline_places.py). A link is right when it is
one of the passage's labeled places; a labeled place is found when it is linked.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import baseline_places
from benchmarks.bench_search import load_directory
from benchmarks.report import Row
from services.directory.names import normalize
from services.directory.places import match_places
from services.directory.search import SearchIndex, load_index
from shared.db import make_engine, make_session_factory

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "fixtures" / "story_links" / "passages.json"


@dataclass
class Score:
    right: int = 0
    wrong: int = 0
    missed: int = 0
    mistakes: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.right / max(1, self.right + self.wrong)

    @property
    def recall(self) -> float:
        return self.right / max(1, self.right + self.missed)


def load_corpus() -> list[dict]:
    return json.loads(CORPUS.read_text(encoding="utf-8"))


def labeled_city(index: SearchIndex, label: list[str]) -> int:
    """The directory city a label [name, country code, region?] means: the most populous
    city of that own name (accents and "St." aside) in that country (and region, when the
    label gives one)."""
    name, country_code, *region = label
    folded = normalize(name)
    ids = [
        city_id
        for city_id in index.ids_by_name.get(folded, ())
        if index.own_name[city_id] == folded
        and index.cities[city_id].country_code == country_code
        and (not region or index.cities[city_id].region == region[0])
    ]
    if not ids:
        raise LookupError(f"no directory city for the label {label}")
    return max(ids, key=lambda city_id: index.cities[city_id].population)


def score(index: SearchIndex, matcher: Callable[[SearchIndex, str], dict]) -> Score:
    result = Score()
    for passage in load_corpus():
        expected = {labeled_city(index, label) for label in passage["places"]}
        found = {link["id"]: link for link in matcher(index, passage["text"])["results"]}
        result.right += len(expected & found.keys())
        result.missed += len(expected - found.keys())
        result.wrong += len(found.keys() - expected)
        for city_id in found.keys() - expected:
            city = index.cities[city_id]
            result.mistakes.append(
                f"wrong {city.name} ({city.country_code}) for {found[city_id]['mention']!r} "
                f"in {passage['text'][:60]!r}"
            )
        for city_id in expected - found.keys():
            city = index.cities[city_id]
            result.mistakes.append(
                f"missed {city.name} ({city.country_code}) in {passage['text']!r}"
            )
    return result


def full_directory_index(directory: Path) -> SearchIndex:
    url = f"sqlite:///{directory / 'directory.sqlite'}"
    load_directory(url)
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        index = load_index(session)
    engine.dispose()
    return index


def measure(seconds: float) -> dict[str, Score]:
    with tempfile.TemporaryDirectory() as directory:
        index = full_directory_index(Path(directory))
    return {
        "today": score(index, match_places),
        "before": score(index, baseline_places.match_places),
    }


def as_rows(measured: dict[str, Score]) -> list[Row]:
    today, before = measured["today"], measured["before"]
    passages = len(load_corpus())
    return [
        Row(
            f"link precision ({passages} passages, {today.right + today.missed} places)",
            f"{today.precision:.1%}",
            f"{before.precision:.1%} (before issue 14)",
            f"{today.wrong} wrong links, {before.wrong} before",
        ),
        Row(
            "link recall",
            f"{today.recall:.1%}",
            f"{before.recall:.1%} (before issue 14)",
            f"{today.missed} missed, {before.missed} before",
        ),
    ]
