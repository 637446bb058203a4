"""Reading a City Search query into the name and the places written after it."""

from services.directory.query import Place, Reading, read_query
from services.directory.regions import region_aliases

ALIASES = region_aliases([("US", "Oregon"), ("US", "Georgia"), ("CA", "Ontario")])
NAMES = {"new york", "portland", "athens", "london"}


def read(query: str) -> list[Reading]:
    return read_query(query, ALIASES, NAMES.__contains__)


def test_a_region_after_a_comma_is_a_place():
    [reading] = read("Portland, OR")
    assert reading.name == "portland"
    assert reading.places == (Place(frozenset(), frozenset({("US", "Oregon")})),)
    assert not reading.strict


def test_georgia_may_be_the_country_or_the_state():
    [reading] = read("Athens, Georgia")
    assert reading.places == (Place(frozenset({"GE"}), frozenset({("US", "Georgia")})),)


def test_region_and_country_after_commas_are_both_places():
    [reading] = read("London, Ontario, Canada")
    assert [place.countries for place in reading.places] == [frozenset(), frozenset({"CA"})]


def test_an_unknown_place_after_a_comma_is_ignored():
    assert read("Portland, Atlantis") == [Reading("portland")]


def test_without_commas_trailing_words_are_a_place_only_when_the_whole_is_no_name():
    assert read("New York") == [Reading("new york")]
    literal, split = read("Portland Oregon")
    assert literal == Reading("portland oregon")
    assert split.name == "portland" and split.strict


def test_without_commas_a_region_and_a_country_can_both_be_peeled():
    names = [reading.name for reading in read("London Ontario Canada")]
    assert names == ["london ontario canada", "london ontario", "london"]


def test_a_comma_with_nothing_after_it_is_just_the_name():
    assert read("Paris,") == [Reading("paris")]
