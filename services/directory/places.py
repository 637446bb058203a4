"""Which directory cities a piece of text mentions (for linking stories to cities).

Precision first: a wrong link puts a story on the wrong city page and in the wrong digests, a
missing one only leaves it off a page. The method is a gazetteer with context rules, as
CLAVIN does: every name of every directory city is looked up in the text (the longest name
wins, "New York City" over "York"), then the words around each name decide.

- People are not places: a name after a title ("Mayor Jacob Frey", "Dr. Sydney Okonkwo"),
  inside a longer capitalized name ("Abraham Lincoln", "Chester Williams", "Whitney
  Houston's"), or next to a verb of speech ("said Sami") is a person's; "the Alhambra" with no
  noun after it is a thing.
- Countries, continents and peoples ("Iraq", "Africa", "Iraqi") are never cities, though
  GeoNames lists some as other names of towns (Arāk); months and titles are not either.
- Names that carry no weight of their own need evidence: a word at the start of a sentence
  ("Tell me", "Nice to meet you"), a common word ("Reading", "Union"), a town known here only
  by another name of a small place.
- Evidence, strongest first: "X, Country" and "X, Region" (which also chooses among
  namesakes: "Portland, Oregon"; a country or region that fits none of them drops the name),
  "sister city X", a partner of a city already found in the same story (found again until
  nothing changes), "in / from / to X", a list with a city already found ("from Accra and
  Ouagadougou").
- Among namesakes: the candidate the evidence names, then a partner of another city found,
  then the best known (people and partnerships on log scales), a city known by this very
  name (not another of its names) and one whose country or region the story names counting
  as ten times better known each; two namesakes within about three times of each other
  that nothing else tells apart are not guessed ("in Lincoln": England's or Nebraska's?).

Each link keeps the evidence that made it, in words for staff.

Why no NER model: none installs here from the package registries with clear provenance and
weights inside the package (spaCy's and Flair's models download from a hub at run time), and
an entity tagger still needs the gazetteer and these rules to choose among 20 Lincolns. The
rules are measured on a labeled corpus (tests/fixtures/story_links/passages.json,
benchmarks/bench_story_links.py).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from services.directory.city_views import city_reference
from services.directory.names import normalize
from services.directory.place_evidence import (
    CALENDAR,
    COMMON_WORDS,
    GIVEN_NAMES,
    PLACE_RUN_WORDS,
    TITLES,
    Context,
    Token,
    country_of,
    country_words,
    is_country_or_people,
)
from services.directory.search import SearchIndex
from shared.errors import InvalidInput

MAX_TEXT_CHARS = 200_000
MAX_WORDS = 4
MAX_TEXTS = 100
MAX_CONTEXT_CITIES = 50
# A city this large, known by the name written, is a place even where nothing else says so
# ("Cologne and São Paulo signed..."): such names are rarely anything else.
WELL_KNOWN_POPULATION = 1_000_000
# A city known here only by another of its names must be this large to link without
# evidence: small places carry odd alternate names (At Tall is also "Tell").
ALTERNATE_NAME_POPULATION = 100_000
# Being known by the very name written counts as ten times the people (one step of
# _renown); the city's country or region named elsewhere in the story, as much again.
OWN_NAME_BONUS = 1.0
NAMED_NEARBY_BONUS = 1.0
# How much better known (in _renown's steps) the first of two namesakes must be when nothing
# else tells them apart.
NAMESAKE_MARGIN = 0.5
# Words before a first name that lead to people as often as to places.
PERSON_PREPOSITIONS = {"to", "for", "with"}
# Partners found let more partners be found; a story settles in two or three rounds.
MAX_ROUNDS = 6
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass
class Mention:
    start: int
    end: int
    original: str
    phrase: str
    ids: tuple[int, ...]
    evidence: list[str] = field(default_factory=list)
    # Evidence strong enough to outweigh how the name is written (a person's name, a word
    # at a sentence's start).
    strong: bool = False
    # Written the way a place is written ("in Kraków", a capitalized name mid-sentence).
    placed: bool = False
    # Written the way a person or a thing is ("Mayor Jacob Frey", "Abraham Lincoln").
    person: bool = False
    # Qualifier tokens ("Oregon" of "Portland, Oregon") that are not mentions themselves.
    qualifier_size: int = 0
    # Where a list joining it to the name before would start ("Accra and Ouagadougou").
    list_start: int | None = None
    chosen: int | None = None


def match_places(
    index: SearchIndex, text: str, limit: int = 50, context_city_ids: list[int] | None = None
) -> dict:
    """The cities the text mentions, each with its evidence. ``context_city_ids``: cities the
    story belongs to without naming them (the feed's organisation's), whose partners count
    as found in the story."""
    if not isinstance(text, str):
        raise InvalidInput("text must be a string")
    context = _context_cities(index, context_city_ids)
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInput(f"text is too long ({MAX_TEXT_CHARS:,} characters at most)")
    tokens = [
        Token(match.group(), normalize(match.group()), match.start(), match.end())
        for match in _WORD.finditer(text)
    ]
    words = Context(text, [token for token in tokens if token.folded])
    mentions = _mentions(index, words)
    countries_named = _countries_named(words)
    # A region named in the story, not as one of its city names ("Oaxaca" the city).
    regions_named = {
        normalize(index.cities[city_id].region)
        for mention in mentions
        for city_id in mention.ids
        if index.cities[city_id].region
    } & _phrases(words) - {mention.phrase for mention in mentions}

    anchors: dict[int, int] = {}  # accepted city -> the mention that found it
    for _round in range(MAX_ROUNDS):
        for number, mention in enumerate(mentions):
            # The cities found elsewhere, and the namesakes of names written as places there
            # ("Nashville ... in Tamworth": Tamworth, New South Wales, Nashville's sister).
            others = {city for city, found_by in anchors.items() if found_by != number}
            others.update(context)
            others.update(
                city_id
                for other_number, other in enumerate(mentions)
                if other_number != number and (other.placed or other.strong) and not other.person
                for city_id in other.ids
            )
            _decide(
                index, mention, others, countries_named, regions_named, mentions, number, context
            )
        accepted = {m.chosen: n for n, m in enumerate(mentions) if m.chosen is not None}
        if accepted.keys() == anchors.keys():
            break
        anchors = accepted

    results: list[dict] = []
    seen: set[int] = set()
    for mention in mentions:
        if mention.chosen is None or mention.chosen in seen:
            continue
        seen.add(mention.chosen)
        city = index.cities[mention.chosen]
        results.append(
            city_reference(city) | {"mention": mention.original, "evidence": mention.evidence}
        )
        if len(results) >= limit:
            break
    return {"results": results}


def match_places_many(
    index: SearchIndex,
    texts: list[str],
    limit: int = 50,
    contexts: list[list[int]] | None = None,
) -> dict:
    """``match_places`` for many texts in one call (the blog links a feed's posts at once);
    ``contexts``: each text's ``context_city_ids``."""
    if not isinstance(texts, list) or len(texts) > MAX_TEXTS:
        raise InvalidInput(f"texts must be a list of at most {MAX_TEXTS} strings")
    if contexts is None:
        contexts = [[] for _ in texts]
    if not isinstance(contexts, list) or len(contexts) != len(texts):
        raise InvalidInput("contexts must be a list with one list of city ids a text")
    return {
        "matches": [
            match_places(index, text, limit, context)["results"]
            for text, context in zip(texts, contexts, strict=True)
        ],
        # The blog keeps it with the links, to ask again once cities have changed since.
        "version": index.version,
    }


def _context_cities(index: SearchIndex, city_ids: list[int] | None) -> frozenset[int]:
    if city_ids is None:
        return frozenset()
    if not isinstance(city_ids, list) or len(city_ids) > MAX_CONTEXT_CITIES:
        raise InvalidInput(f"context_city_ids must be a list of at most {MAX_CONTEXT_CITIES} ids")
    if not all(isinstance(one, int) and not isinstance(one, bool) for one in city_ids):
        raise InvalidInput("context_city_ids must be whole numbers")
    # A city the directory no longer holds says nothing.
    return frozenset(city_id for city_id in city_ids if city_id in index.cities)


def _mentions(index: SearchIndex, context: Context) -> list[Mention]:
    """Capitalized names of directory cities, longest first, with what their own words say."""
    tokens = context.tokens
    found: list[Mention] = []
    position = 0
    while position < len(tokens):
        for size in range(min(MAX_WORDS, len(tokens) - position), 0, -1):
            phrase = " ".join(token.folded for token in tokens[position : position + size])
            ids = index.ids_by_name.get(phrase)
            if not ids or len(phrase) < 3 or phrase.isdigit():
                continue
            if not tokens[position].capitalized or _region_only(index, phrase, ids):
                break
            if size > 1 and not _known_by(index, ids, phrase, ALTERNATE_NAME_POPULATION):
                # Another name of a small place ("The Bath", a Jamaican village's) does not
                # swallow a better-known name inside it ("The Bath and Aix-en-Provence
                # choirs": Bath, England, Aix's sister).
                continue
            original = context.text[tokens[position].start : tokens[position + size - 1].end]
            mention = Mention(position, position + size, original, phrase, ids)
            _read_context(index, context, mention)
            if mention.ids:
                found.append(mention)
            position += size + mention.qualifier_size - 1
            break
        position += 1
    return found


def _read_context(index: SearchIndex, context: Context, mention: Mention) -> None:
    """What the mention's own words and neighbours say: candidates narrowed by a qualifier,
    strong and plain evidence, or the signs of a person's name."""
    start, end, phrase = mention.start, mention.end, mention.phrase
    if is_country_or_people(phrase):
        # Only a city-state is its country ("Singapore").
        code = country_of(phrase)
        mention.ids = tuple(
            city_id
            for city_id in mention.ids
            if index.cities[city_id].country_code == code and index.own_name[city_id] == phrase
        )
    if (end - start == 1 and phrase in TITLES) or phrase in CALENDAR:
        mention.ids = ()
    if not mention.ids:
        return

    for size, folded, written in context.qualifiers_after(end):
        fits = _fitting(index, mention.ids, folded)
        if fits:
            mention.ids, mention.qualifier_size, mention.strong = fits, size, True
            mention.evidence.append(f"'{mention.original}, {written}'")
            break
        if folded in index.region_names or country_of(folded):
            # "Athens, Georgia" where no Athens is in Georgia: a place the directory lacks.
            mention.ids, mention.qualifier_size = (), size
            return

    if start > 0 and context.gap_before(start).strip() == ",":
        mention.list_start = start
    elif start > 1 and context.word(start - 1) in ("and", "or"):
        mention.list_start = start - 1
    if context.sister_phrase_before(start):
        mention.strong = True
        mention.evidence.append(f"'sister city {mention.original}'")
    preposition = context.preposition_before(start)
    if (
        preposition in PERSON_PREPOSITIONS
        and end - start == 1
        and phrase in GIVEN_NAMES
        and not _known_by(index, mention.ids, phrase, ALTERNATE_NAME_POPULATION, own=False)
    ):
        # "The prize went to Sami": a prize, a letter or thanks go to people as often as
        # to places; a small town's first name needs more than this.
        preposition = None
    if preposition:
        mention.placed = True
        mention.evidence.append(f"'{preposition} {mention.original}'")

    first, last = context.run_bounds(start, end)
    # Words before the name make it a person's ("Abraham Lincoln") or a thing's ("Twin
    # Cities Marathon"); words after, unless they are a place's ("Charlotte Sister Cities").
    longer_name = first < start or any(
        context.word(position) not in PLACE_RUN_WORDS for position in range(end, last)
    )
    mention.person = (
        context.after_title(start)
        or longer_name
        or (not preposition and context.speech_next_to(start, end))
    )
    # A name of several capitalized words ("The Hague") is written as a name even there.
    # A name of several capitalized words ("The Hague") is written as a name even at a
    # sentence's start, if a sizeable city bears it ("Union Square" may be a square).
    at_start = context.starts_sentence(start) and (
        end - start == 1
        or not context.tokens[start + 1].capitalized
        or not _known_by(index, mention.ids, phrase, ALTERNATE_NAME_POPULATION, own=False)
    )
    if not _known_by(index, mention.ids, phrase, ALTERNATE_NAME_POPULATION):
        # Only strong evidence or a partner links a small place by another of its names.
        mention.placed = False
        return
    weak = (
        at_start
        or (end - start == 1 and phrase in COMMON_WORDS)
        # "for Grace" is a person; "the Charlotte Sister Cities committee" a place's.
        or (end - start == 1 and phrase in GIVEN_NAMES and last == end)
        or context.definite_thing(start, end)
    )
    if not weak:
        mention.placed = True
        if not mention.evidence:
            mention.evidence.append(f"'{mention.original}' — written as a name mid-sentence")
    elif at_start and phrase not in COMMON_WORDS and _well_known(index, mention.ids):
        mention.placed = True
        mention.evidence.append(f"'{mention.original}' — a city of over a million people")


def _decide(
    index: SearchIndex,
    mention: Mention,
    anchors: set[int],
    countries_named: set[str],
    regions_named: set[str],
    mentions: list[Mention],
    number: int,
    context: frozenset[int] = frozenset(),
) -> None:
    """Choose the mention's city, or none, given the cities found or written as places
    elsewhere in the story and the cities it belongs to (anchors, ``context``)."""
    mention.chosen = None
    if not mention.ids:
        return
    partners = {
        city_id: index.sisters.get(city_id, set()) & anchors
        for city_id in mention.ids
        if index.sisters.get(city_id, set()) & anchors
    }
    listed = _listed_after(mentions, number)
    chosen = {other.chosen for other in mentions}
    if mention.person and not mention.strong:
        return
    if not (mention.strong or mention.placed or partners or listed):
        return

    def rank(city_id: int) -> tuple:
        city = index.cities[city_id]
        region = normalize(city.region) if city.region else ""
        return (
            city_id in partners,
            _renown(index, city_id)
            + OWN_NAME_BONUS * (index.own_name[city_id] == mention.phrase)
            + NAMED_NEARBY_BONUS * (city.country_code in countries_named)
            + NAMED_NEARBY_BONUS * (region in regions_named and region != mention.phrase),
            -city_id,
        )

    ranked = sorted(mention.ids, key=rank, reverse=True)
    if not mention.strong and _too_close(index, rank, ranked, mention.phrase):
        return
    mention.chosen = ranked[0]
    extra = []
    if mention.chosen in partners:
        partner_id = min(partners[mention.chosen], key=lambda c: (c not in chosen, c))
        partner = index.cities[partner_id]
        where = (
            "the city of the feed's organisation"
            if partner_id in context and partner_id not in chosen
            else "mentioned in the same story"
        )
        extra.append(f"'{mention.original}' — sister of {partner.name}, {where}")
    elif listed and not (mention.strong or mention.placed):
        extra.append(f"'{mention.original}' — listed with {listed}")
    mention.evidence = [*_own_evidence(mention), *extra]


def _own_evidence(mention: Mention) -> list[str]:
    return [
        item for item in mention.evidence if " — sister of " not in item and "listed" not in item
    ]


def _listed_after(mentions: list[Mention], number: int) -> str | None:
    """The city found just before this mention in a list ("Accra and Ouagadougou")."""
    if number == 0:
        return None
    previous, current = mentions[number - 1], mentions[number]
    if previous.chosen is None or previous.person:
        return None
    if current.list_start != previous.end + previous.qualifier_size:
        return None
    return previous.original


def _fitting(index: SearchIndex, ids: tuple[int, ...], qualifier: str) -> tuple[int, ...]:
    """The candidates whose country or region a qualifier names."""
    code = country_of(qualifier)
    return tuple(
        city_id
        for city_id in ids
        if (code and index.cities[city_id].country_code == code)
        or (index.cities[city_id].region and normalize(index.cities[city_id].region) == qualifier)
    )


def _known_by(
    index: SearchIndex, ids: tuple[int, ...], phrase: str, population: int, own: bool = True
) -> bool:
    """Whether a candidate is large enough, or (if own) bears this name as its own so
    that the name is not another of a small place's many names."""
    return any(
        (own and index.own_name[city_id] == phrase)
        or index.cities[city_id].population >= population
        for city_id in ids
    )


def _too_close(index: SearchIndex, rank, ranked: list[int], phrase: str) -> bool:
    """Two namesakes that nothing in the story tells apart and that are about as well known
    ("in Lincoln": England's or Nebraska's?): no link rather than a coin toss."""
    if len(ranked) < 2:
        return False
    first, second = rank(ranked[0]), rank(ranked[1])
    return (
        first[0] == second[0]
        and index.cities[ranked[1]].population > 0
        and index.own_name[ranked[1]] == phrase
        and first[1] - second[1] < NAMESAKE_MARGIN
    )


def _renown(index: SearchIndex, city_id: int) -> float:
    """How likely a story means this city among its namesakes: people and partnerships, on
    log scales (Bethlehem in Palestine, 73 partners, before Bethlehem in South Africa)."""
    return math.log10(index.cities[city_id].population + 10) + 0.5 * math.log2(
        1 + index.sister_count(city_id)
    )


def _well_known(index: SearchIndex, ids: tuple[int, ...]) -> bool:
    return any(index.cities[city_id].population >= WELL_KNOWN_POPULATION for city_id in ids)


def _region_only(index: SearchIndex, phrase: str, ids: tuple[int, ...]) -> bool:
    """A region's name ("New South Wales") that only a place of unknown size shares: a
    partnership list's mistake, not a mention of a city."""
    return phrase in index.region_names and all(
        index.cities[city_id].population == 0 for city_id in ids
    )


def _phrases(context: Context) -> set[str]:
    words = [token.folded for token in context.tokens]
    return {
        " ".join(words[start : start + size])
        for size in (1, 2, 3)
        for start in range(len(words) - size + 1)
    }


def _countries_named(context: Context) -> set[str]:
    names = country_words()
    return {names[phrase] for phrase in _phrases(context) if phrase in names}
