"""Regions as people write them: the directory's English names joined to ISO 3166-2."""

import pycountry
import pytest

from services.directory.regions import LINKS, POSTAL_ABBREVIATIONS, region_aliases

HELD = [
    ("US", "Oregon"),
    ("US", "Georgia"),
    ("US", "Minnesota"),
    ("US", "Washington"),
    ("US", "Washington, D.C."),
    ("CA", "Ontario"),
    ("CA", "Quebec"),
    ("CA", "British Columbia"),
    ("AU", "New South Wales"),
    ("AU", "Victoria"),
    ("DE", "Bavaria"),
    ("DE", "North Rhine-Westphalia"),
    ("IT", "Tuscany"),
    ("ES", "Castille and Leon"),
    ("GB", "Wales"),
    ("JP", "Saga Prefecture"),
    ("RU", "Irkutsk"),
    ("CN", "Jiangsu Sheng"),
]


@pytest.fixture(scope="module")
def aliases():
    return region_aliases(HELD)


@pytest.mark.parametrize(
    ("written", "region"),
    [
        ("oregon", ("US", "Oregon")),
        ("or", ("US", "Oregon")),
        ("ore", ("US", "Oregon")),
        ("us or", ("US", "Oregon")),
        ("on", ("CA", "Ontario")),
        ("ont", ("CA", "Ontario")),
        ("qc", ("CA", "Quebec")),
        ("pq", ("CA", "Quebec")),
        ("b c", ("CA", "British Columbia")),
        ("nsw", ("AU", "New South Wales")),
        ("vic", ("AU", "Victoria")),
        ("bayern", ("DE", "Bavaria")),
        ("by", ("DE", "Bavaria")),
        ("nordrhein westfalen", ("DE", "North Rhine-Westphalia")),
        ("nw", ("DE", "North Rhine-Westphalia")),
        ("toscana", ("IT", "Tuscany")),
        ("castilla y leon", ("ES", "Castille and Leon")),
        ("cymru", ("GB", "Wales")),
        ("saga", ("JP", "Saga Prefecture")),
        ("irkutskaya oblast", ("RU", "Irkutsk")),
        ("jiangsu", ("CN", "Jiangsu Sheng")),
        ("d c", ("US", "Washington, D.C.")),
        ("dc", ("US", "Washington, D.C.")),
    ],
)
def test_a_region_answers_to_its_names_codes_and_abbreviations(aliases, written, region):
    assert region in aliases[written]


def test_georgia_the_state_is_a_region_and_washington_state_is_not_the_capital(aliases):
    assert aliases["georgia"] == {("US", "Georgia")}
    assert aliases["washington"] == {("US", "Washington")}
    assert aliases["wa"] == {("US", "Washington")}


def test_every_explicit_link_and_abbreviation_names_a_real_iso_code():
    for code in [*LINKS.values(), *POSTAL_ABBREVIATIONS]:
        assert pycountry.subdivisions.get(code=code) is not None, code


def test_a_region_iso_does_not_know_still_answers_to_its_own_name():
    assert region_aliases([("XK", "Prizren")]) == {"prizren": {("XK", "Prizren")}}
