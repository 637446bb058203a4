"""City Search: parsing and ranking over the in-memory index of every name of every place
(``search_index``: how it is stored and loaded), so a query costs microseconds and answers
the same on SQLite and PostgreSQL.

A query is read by ``query`` into a name and the places written after it ("Portland, OR");
cities in those places come first, the others stay as guesses ("Athens, Georgia" when
Georgia the country has no Athens).

Matching, best first: the exact name, an exact alternate or historical name ("Bombay"), a
prefix for autocomplete ("minnea"), then spelling mistakes (one or two edits of any name, own,
alternate or historical, found through ``typos``' symmetric-deletion index). Within each kind,
cities with more partnerships come first, then cities with more people (``_popularity_score``,
log scales).

When a big city's other name meets a smaller place's own name, the rule is:
- the same name exactly ("Roma"): the city found by its other name comes first when it has
  100 times the people of every place that bears the name as its own
  (``ALTERNATE_PEOPLE_RATIO``; people, not partnerships, say which place a name means: Rome,
  not Roma, Texas, though both have a sister city), or when it is 10,000 times as popular
  (``ALTERNATE_PENALTY`` = 4 on the log scale); so a world city wins over a village, not
  over a real town that bears the name as its own ("Manchester" is Manchester, not the old
  name of a part of Richmond, Virginia);
- a typo of both ("Bombey": "Bombay" is Mumbai's other name, "Bambey" a Senegalese town's own)
  at the same distance: 100 times (``TYPO_ALTERNATE_PENALTY`` = 2). A typo is weaker evidence
  of which name was meant than an exact name is, so a smaller lead suffices; people misspell
  the names they have heard, and the names they have heard belong to big places;
- an exact name beats a typo or a prefix, and fewer edits beat more ("Bambey" is Bambey),
  unless the city whose own name the query begins or misses by one letter is a million times
  as popular as every exact match (``WEAKER_MATCH_LEAD`` = 6) and has 100 times the people
  of each (``ALTERNATE_PEOPLE_RATIO``; partnerships alone never do it): "Johannesberg" is
  Johannesburg, not the Bavarian village of 4,000; "Barcelon" is Barcelona, not a Philippine
  town that GeoNames also calls "Barcelon"; the same for one letter off another name of a
  world city when no place bears the query as its own name ("Pekking": Beijing, not Pöcking,
  whose other name it is; "Sagon": Ho Chi Minh City, not Sagunto, whose name it begins);
- two edits reach a big city's own name (100,000 people or more, ``BIG_CITY``) when nothing
  is closer ("Philadelfia"), through a second, two-deep deletion index of those names only;
- among small places people matter little: the organisation's home country's towns of under
  15,000 people (``home_country``, DIRECTORY_HOME_COUNTRY) count as ten times their people
  ("Excelsior" is Excelsior, Minnesota, 2,300 people, not Excelsior, South Africa, 7,600).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from rapidfuzz.distance import DamerauLevenshtein

from services.directory.city_views import city_summary
from services.directory.geography import countries, resolve_country
from services.directory.query import Place, Reading, read_query
from services.directory.search_index import (
    CityRecord,
    IndexHolder,
    SearchIndex,
    build_index,
    load_index,
)
from shared import search_limits
from shared.errors import InvalidInput

__all__ = [
    "CityRecord",
    "IndexHolder",
    "SearchIndex",
    "build_index",
    "load_index",
    "resolve_country_filter",
    "search",
]

MAX_QUERY_CHARS = search_limits.QUERY_CHARS
MAX_LIMIT = search_limits.RESULTS
EXACT, ALTERNATE, PREFIX, PREFIX_ALTERNATE, FUZZY, FUZZY_ALTERNATE = range(6)
MATCH_NAMES = {
    EXACT: "exact",
    ALTERNATE: "alternate",
    PREFIX: "prefix",
    PREFIX_ALTERNATE: "prefix",
    FUZZY: "fuzzy",
    FUZZY_ALTERNATE: "fuzzy",
}
GROUPS = {EXACT: 0, ALTERNATE: 0, PREFIX: 1, PREFIX_ALTERNATE: 1, FUZZY: 2, FUZZY_ALTERNATE: 2}
PREFIX_SCAN_LIMIT = 20000
FUZZY_MIN_CHARS = 4
TWO_EDITS_MIN_CHARS = 6
# How much more popular (log scale, see _popularity_score) a city found by another of its
# names must be to come before a city whose own name matches.
ALTERNATE_PENALTY = 4.0
# How many times the people of every place whose own name matches a city found by another
# of its names must have to come first, whatever their partnerships.
ALTERNATE_PEOPLE_RATIO = 100
# How much more popular a city whose own name the query begins ("Barcelon") or misses by one
# letter ("Johannesberg") must be to come before the places that match exactly.
WEAKER_MATCH_LEAD = 6.0
# The same for a typo: one of another name must belong to a city 100 times as popular as
# the place whose own name is as close ("Bombey": Mumbai, not Bambey).
TYPO_ALTERNATE_PENALTY = 2.0
# The organisation's own country's towns of fewer people than this count as ten times their
# people (``HOME_TOWN_BONUS`` on the log scale) against namesakes abroad: among small places
# people matter little, and a town looking for its first sister is most likely near home.
HOME_TOWN_POPULATION = 15_000
HOME_TOWN_BONUS = 1.0


def resolve_country_filter(country: str | None) -> str | None:
    if country is None or not country.strip():
        return None
    text = country.strip()
    if len(text) > search_limits.COUNTRY_CHARS:
        raise InvalidInput("country is too long")
    if len(text) == 2 and text.upper() in countries():
        return text.upper()
    codes = resolve_country(text)
    if not codes:
        # Not echoed back: an error message is no place for what a stranger typed.
        raise InvalidInput("unknown country: give an ISO code such as 'US' or a country name")
    return codes[0]


def search(
    index: SearchIndex,
    query: str,
    country: str | None = None,
    limit: int = 10,
    home_country: str | None = None,
) -> dict:
    """Ranked cities for a query. Raises ``InvalidInput`` for a query no one could mean.
    ``home_country``: the organisation's country (``DIRECTORY_HOME_COUNTRY``), whose small
    towns come before namesakes abroad of similar size."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("q must not be empty")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInput(f"q is too long ({MAX_QUERY_CHARS} characters at most)")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be from 1 to {MAX_LIMIT}")
    country_code = resolve_country_filter(country)
    readings = read_query(query, index.region_aliases, index.names.__contains__)
    if not readings[0].name:
        raise InvalidInput("q has no letters or digits to search for")

    # city row -> (places it fits, kind of match, edit distance), the best reading's
    found: dict[int, tuple[int, int, int]] = {}
    for reading in readings:
        _read(index, reading, country_code, limit, found)
    if not found:
        # "Springfield Georgia" and no Springfield there: a guess beats an empty answer.
        for reading in readings[1:]:
            _read(index, Reading(reading.name, reading.places), country_code, limit, found)

    best = _exact_best(index, found)
    ordered = sorted(found, key=lambda row: _rank(index, row, found[row], best, home_country))
    ordered = ordered[:limit]
    results = []
    for row in ordered:
        result = city_summary(index.record(row), index.sister_counts[row])
        result["match"] = MATCH_NAMES[found[row][1]]
        results.append(result)
    return {"results": results}


def _read(
    index: SearchIndex,
    reading: Reading,
    country_code: str | None,
    limit: int,
    found: dict[int, tuple[int, int, int]],
) -> None:
    """Adds the cities one reading of the query finds. A city that fits more of the places
    written after the name comes first; one that fits none is still a guess, unless the
    reading is strict."""
    folded, places = reading.name, reading.places
    fitting: set[int] = set()  # found in every place written (with none written: all found)
    country_of, region_of = index.country, index.region

    def consider(row: int, kind: int, distance: int = 0) -> None:
        country = country_of[row]
        if country_code and country != country_code:
            return
        region = region_of[row]
        fits = sum(place.holds(country, region) for place in places)
        if fits == len(places):
            fitting.add(row)
        elif reading.strict:
            return
        match = (-fits, kind, distance)
        best = found.get(row)
        if best is None or match < best:
            found[row] = match

    def consider_fitting(row: int, kind: int, distance: int = 0) -> None:
        if all(place.holds(country_of[row], region_of[row]) for place in places):
            consider(row, kind, distance)

    position = index.names.position(folded)
    if position is not None:
        for row in index.rows_named(position):
            consider(row, EXACT if index.own_position[row] == position else ALTERNATE)
    if not reading.strict:
        if country_code is None and not places:
            _prefix_matches(index, folded, consider, lambda: len(found), limit, True)
        else:
            # The cities in the places written first: a wide prefix's ranked few may hold
            # none of them ("sa, NY"), and its names are too many to scan, the cities of the
            # smallest place written are not.
            if index.wide_prefix(folded) is not None:
                pools = [_rows_of(index, place) for place in places]
                if country_code:
                    pools.append(index.rows_in.get(country_code, ()))
                start, end = index.names.span(folded)
                for row in min(pools, key=len):
                    if start <= index.own_position[row] < end:
                        consider_fitting(row, PREFIX)
            else:
                _prefix_matches(index, folded, consider_fitting, lambda: 0, limit, False)
            if country_code is None:
                _prefix_matches(index, folded, consider, lambda: len(found), limit, True)
    if len(fitting) < limit and len(folded) >= FUZZY_MIN_CHARS:
        _fuzzy_matches(index, folded, consider)
        if len(folded) >= TWO_EDITS_MIN_CHARS and not any(
            kind < FUZZY or distance < 2 for _, kind, distance in found.values()
        ):
            # Nothing closer: two slips in a big city's name ("Philadelfia"). Only then, as
            # the look-up costs more than the rest of a search.
            _fuzzy_matches(index, folded, consider, index.big_city_typos.candidate_numbers)


def _rows_of(index: SearchIndex, place: Place) -> list[int]:
    return [row for key in (*place.countries, *place.regions) for row in index.rows_in.get(key, ())]


def _popularity_score(index: SearchIndex, row: int) -> float:
    """More partnerships, then more people: both on a log scale so neither swamps the other."""
    return math.log10(index.population[row] + 1) + 1.5 * math.log2(index.sister_counts[row] + 1)


@dataclass(frozen=True, slots=True)
class _ExactBest:
    """By places fitted: the best popularity among the exact matches (own or other name) and
    among the prefixes, the most people among the exact matches, and among the places whose own
    name matches."""

    score: dict[int, float]
    people: dict[int, int]
    prefix_score: dict[int, float]
    own_people: dict[int, int]


def _exact_best(index: SearchIndex, found: dict[int, tuple[int, int, int]]) -> _ExactBest:
    best = _ExactBest({}, {}, {}, {})
    for row, (unfitted, kind, _distance) in found.items():
        group = GROUPS[kind]
        if group < 2:
            scores = best.score if group == 0 else best.prefix_score
            score = _popularity_score(index, row)
            scores[unfitted] = max(scores.get(unfitted, -math.inf), score)
            if group == 0:
                best.people[unfitted] = max(best.people.get(unfitted, 0), index.population[row])
        if kind == EXACT:
            people = index.population[row]
            best.own_people[unfitted] = max(best.own_people.get(unfitted, 0), people)
    return best


def _rank(
    index: SearchIndex,
    row: int,
    match: tuple[int, int, int],
    best: _ExactBest,
    home_country: str | None = None,
) -> tuple:
    """Places fitted, then own name before alternate name before prefix before typo; but a
    world city found by its other name ("Calcutta", "Roma", a typo of "Bombay") outranks a
    smaller place that bears that name, or a name as close, as its own; a world city whose
    own name the query begins or misses by one letter outranks villages that match exactly
    ("Barcelon", "Johannesberg"); one letter off another name of a world city outranks
    villages that bear the query only as another name ("Pekking") or begin with it
    ("Sagon"); and the home country's small towns come before namesakes abroad of similar
    size ("Excelsior")."""
    unfitted, kind, distance = match
    score = _popularity_score(index, row)
    if (
        index.country[row] == home_country
        and index.population[row] < HOME_TOWN_POPULATION
        and kind in (EXACT, PREFIX, FUZZY)
    ):
        score += HOME_TOWN_BONUS
    if _outranks_stronger_matches(kind, distance, unfitted, score, best) and (
        # Partnerships alone never make a weaker match beat an exact name: the town of
        # 10,000 with 17 sisters is not what a search for its namesake of 10,000 means.
        index.population[row] >= ALTERNATE_PEOPLE_RATIO * (best.people.get(unfitted, 0) + 1)
    ):
        return (unfitted, 0, 0, -score, index.city_names[row], index.ids[row])
    own_people = best.own_people.get(unfitted)
    if (
        kind == ALTERNATE
        and own_people is not None
        and index.population[row] >= ALTERNATE_PEOPLE_RATIO * (own_people + 1)
    ):
        # People, not partnerships, say which place a name means: Rome has 160 times the
        # people of any Roma, though Roma, Texas has a sister city too.
        return (unfitted, 0, -1, -score, index.city_names[row], index.ids[row])
    if kind in (ALTERNATE, PREFIX_ALTERNATE):
        score -= ALTERNATE_PENALTY
    elif kind == FUZZY_ALTERNATE:
        score -= TYPO_ALTERNATE_PENALTY
    group = GROUPS[kind]
    return (unfitted, group, distance, -score, index.city_names[row], index.ids[row])


def _outranks_stronger_matches(
    kind: int, distance: int, unfitted: int, score: float, best: _ExactBest
) -> bool:
    """A prefix or a one-letter typo of a city a million times as popular as every stronger
    match (``WEAKER_MATCH_LEAD``). A typo of another name never outranks a place that bears
    the query as its own name ("Bambey" is Bambey, not Mumbai by "Bombay")."""
    if kind == PREFIX:
        return score >= best.score.get(unfitted, math.inf) + WEAKER_MATCH_LEAD
    if distance != 1 or kind not in (FUZZY, FUZZY_ALTERNATE):
        return False
    if kind == FUZZY_ALTERNATE and unfitted in best.own_people:
        return False
    stronger = best.score.get(unfitted, best.prefix_score.get(unfitted))
    return stronger is not None and score >= stronger + WEAKER_MATCH_LEAD


def _prefix_matches(
    index: SearchIndex,
    folded: str,
    consider: Callable,
    found_count: Callable[[], int],
    enough: int,
    ranked_only: bool,
) -> None:
    """Names that begin with the query. ``ranked_only``: no filter applies, so a wide
    prefix's ranked cities are all there is to see."""
    start, end = index.names.span(folded)
    own_position = index.own_position
    wide = index.wide_prefix(folded)
    if wide is not None:
        before = found_count()
        for row in wide:
            consider(row, PREFIX if start <= own_position[row] < end else PREFIX_ALTERNATE)
        if ranked_only or found_count() - before >= enough:
            return
    for position in range(start, min(end, start + PREFIX_SCAN_LIMIT)):
        for row in index.rows_named(position):
            consider(row, PREFIX if start <= own_position[row] < end else PREFIX_ALTERNATE)


def _fuzzy_matches(
    index: SearchIndex, folded: str, consider: Callable, candidates: Callable | None = None
) -> None:
    """Names one edit away (two for names of TWO_EDITS_MIN_CHARS letters or more) among the
    candidates of the one-deep typo index, or of another (``candidates``)."""
    allowed = 1 if len(folded) < TWO_EDITS_MIN_CHARS else 2
    for position in (candidates or index.typos.candidate_numbers)(folded):
        name = index.names[position]
        if len(name) < FUZZY_MIN_CHARS:
            continue
        distance = DamerauLevenshtein.distance(folded, name, score_cutoff=allowed)
        if distance <= allowed:
            for row in index.rows_named(position):
                if index.own_position[row] == position:
                    consider(row, FUZZY, distance)
                else:
                    consider(row, FUZZY_ALTERNATE, distance)
