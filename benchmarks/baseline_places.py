"""The story-link matcher as it was before issue 14, kept as the baseline of bench_story_links.

Precise more than greedy: the longest name wins ("New York City" over "York"); a name that is
also a common word ("Nice", "Reading", "Mobile", "Bath") or written in lower case counts only
with support in the text (its country or region named, or a partner city mentioned); among
cities sharing a name, a partner of another city in the text wins ("Minneapolis ... Najaf" is
Najaf, Iraq), then one whose country the text names, then the most populous.
"""

from __future__ import annotations

import functools
import re

from services.directory.geography import folded_country_names
from services.directory.names import normalize
from services.directory.search import SearchIndex
from shared.errors import InvalidInput

MAX_TEXT_CHARS = 200_000
MAX_WORDS = 4
# English words that are also names of directory cities: alone they are not evidence.
COMMON_WORDS = frozenset(
    """
    a about after all also and any april are art as at august back bath be beach bear best
    big black blue bridge brown buffalo by camp can cape center central church city clay
    college come commerce concord corona day deal december division does early east eden
    enterprise even fair faith fall february field fields first five for formosa fort forest
    four freedom friday from gap garden gold golden good grand green grove had harbor has
    have haven he her hero highland hill home hope how i if in independence is it its
    january july june justice just kind king lake land liberty lincoln little long lost
    love made make male man march march marion may media mercy middle mission mobile monday
    more most mount mountain much nice north not november now oak october of on one only
    opportunity or orange order our paradise park peace pleasant plain plains point port
    post power progress providence reading real red rich river rock rome royal rush saint
    said sale salem same san say see september seven she short side silver six so south
    split spring springs star state station still sun sunday sunrise sunset ten than that
    the their them then there these they this three thursday time to today too troy
    tuesday two union unity up us valley victoria view village vista was we wednesday well
    were west what when which white who will win with worth you young
    """.split()  # noqa: SIM905 - a word list reads better as words
)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@functools.cache
def _country_words() -> dict[str, str]:
    return {name: code for name, code in folded_country_names().items() if len(name) >= 4}


def match_places(index: SearchIndex, text: str, limit: int = 50) -> dict:
    if not isinstance(text, str):
        raise InvalidInput("text must be a string")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInput(f"text is too long ({MAX_TEXT_CHARS:,} characters at most)")
    words = [(match.group(), normalize(match.group())) for match in _WORD.finditer(text)]
    words = [(original, folded) for original, folded in words if folded]
    folded_words = [folded for _original, folded in words]

    countries_named = _countries_in(folded_words)
    mentions: list[tuple[int, str, bool, tuple[int, ...]]] = []
    position = 0
    while position < len(words):
        for size in range(min(MAX_WORDS, len(words) - position), 0, -1):
            phrase = " ".join(folded_words[position : position + size])
            ids = index.ids_by_name.get(phrase)
            if ids and len(phrase) >= 3 and not phrase.isdigit():
                original = " ".join(o for o, _f in words[position : position + size])
                if original[:1].isupper() and not _region_only(index, phrase, ids):
                    weak = size == 1 and phrase in COMMON_WORDS
                    mentions.append((position, original, weak, ids))
                position += size
                break
        else:
            position += 1

    all_candidates = {city_id for _p, _o, _w, ids in mentions for city_id in ids}
    folded_text = " ".join(folded_words)
    regions_named = {
        normalize(index.cities[city_id].region or "")
        for city_id in all_candidates
        if index.cities[city_id].region and normalize(index.cities[city_id].region) in folded_text
    }

    results: list[dict] = []
    seen: set[int] = set()
    for _position, original, weak, ids in mentions:
        others = all_candidates - set(ids)

        def support(city_id: int, others: set[int] = others) -> tuple[bool, bool, bool]:
            city = index.cities[city_id]
            return (
                bool(index.sisters.get(city_id, set()) & others),
                city.country_code in countries_named,
                bool(city.region) and normalize(city.region) in regions_named,
            )

        best = max(
            ids,
            key=lambda city_id: (*support(city_id), index.cities[city_id].population, -city_id),
        )
        if weak and not any(support(best)):
            continue
        if best in seen:
            continue
        seen.add(best)
        city = index.cities[best]
        results.append(
            {"id": best, "name": city.name, "country_code": city.country_code, "mention": original}
        )
        if len(results) >= limit:
            break
    return {"results": results}


def _region_only(index: SearchIndex, phrase: str, ids: tuple[int, ...]) -> bool:
    """A region's name ("New South Wales") that only a place of unknown size shares: a
    partnership list's mistake, not a mention of a city."""
    return phrase in index.region_names and all(
        index.cities[city_id].population == 0 for city_id in ids
    )


def _countries_in(folded_words: list[str]) -> set[str]:
    found = set()
    names = _country_words()
    for size in (1, 2, 3):
        for start in range(len(folded_words) - size + 1):
            code = names.get(" ".join(folded_words[start : start + size]))
            if code:
                found.add(code)
    return found
