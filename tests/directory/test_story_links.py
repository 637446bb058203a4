"""Story links on the real directory: the labeled corpus, and each trap on its own."""

import pytest

from benchmarks.bench_story_links import load_corpus, score
from services.directory.places import match_places, match_places_many
from shared.errors import InvalidInput

pytestmark = pytest.mark.integration


def _found(full_directory, text: str) -> list[tuple[str, str]]:
    results = match_places(full_directory.index, text)["results"]
    return [(r["name"], r["country_code"]) for r in results]


def test_the_labeled_corpus_is_linked_with_precision_first(full_directory):
    assert len(load_corpus()) >= 150
    result = score(full_directory.index, match_places)
    assert result.precision >= 0.97, "\n".join(result.mistakes)
    assert result.recall >= 0.90, "\n".join(result.mistakes)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The three stories of the organisation's home page (issue 14).
        (
            "Minneapolis hosts a delegation from Najaf. Six visitors from Iraq came to City "
            "Hall, where Sami Hassan, a teacher, spoke.",
            [("Minneapolis", "US"), ("Najaf", "IQ")],
        ),
        ("Tell me what citizen diplomacy means to you, asked our board chair.", []),
        (
            "Nashville's student ambassadors travelled to Tamworth for the festival. Chancellor "
            "Regina Moore joined them.",
            [("Nashville", "US"), ("Tamworth", "AU")],
        ),
    ],
)
def test_the_home_page_stories_link_only_their_cities(full_directory, text, expected):
    assert _found(full_directory, text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Abraham Lincoln's words were read aloud.",
        "Chester Williams read a poem.",
        "Troy Jenkins led the volunteers.",
        "Sydney Alvarez organised the host families.",
        "Regina Okafor joined the exchange.",
        "The prize went to Sami, said the teacher.",
        "Whitney Houston's songs closed the gala.",
        "Milan Kundera's novels were the theme of the book club.",
        "Christmas came early for Grace.",
        "Volunteers Sarah, David and Maria cooked for the guests.",
    ],
)
def test_first_names_and_surnames_that_are_towns_are_people(full_directory, text):
    assert _found(full_directory, text) == []


@pytest.mark.parametrize(
    "text",
    [
        "Mayor Lincoln Osei opened the fair.",
        "Governor Troy Ellis spoke first.",
        "Mrs. Chester and her students wrote letters.",
        "Dr. Sydney Okonkwo runs the clinic.",
        "Professor Paris Katsaros lectured on Byzantine art.",
    ],
)
def test_a_name_after_a_title_is_a_person(full_directory, text):
    assert _found(full_directory, text) == []


@pytest.mark.parametrize(
    "text",
    [
        "The delegation from Iraq included two doctors.",
        "Iraqi students visited the school.",
        "The visitors from Jordan brought gifts.",
        "Ten students came from Lebanon and Armenia.",
        "Thai chefs cooked for the festival.",
        "A panel on sister cities in Africa.",
    ],
)
def test_countries_and_peoples_are_never_cities(full_directory, text):
    assert _found(full_directory, text) == []


@pytest.mark.parametrize(
    "text",
    [
        "Tell me about your town.",
        "Nice to meet you, said the engineers.",
        "Say hello to our new members.",
        "Mobile clinics now serve the villages.",
        "Paradise, it seemed, was a garden.",
    ],
)
def test_a_word_at_the_start_of_a_sentence_is_not_a_place_by_itself(full_directory, text):
    assert _found(full_directory, text) == []


@pytest.mark.parametrize(
    "text",
    [
        "In the spirit of liberty, unity and friendship, the cities signed a pledge.",
        "Independence Day was celebrated with music.",
        "Concord between nations begins with small steps.",
        "Liberty Chen, a volunteer, welcomed the guests.",
        "Union Square filled with dancers.",
        "The students met in May and again in June.",
    ],
)
def test_common_words_that_are_towns_are_not_links(full_directory, text):
    assert _found(full_directory, text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Students from Lincoln, Nebraska, spent a semester abroad.", [("Lincoln", "US")]),
        ("The choir from Chester, England, sang.", [("Chester", "GB")]),
        ("Mayor Kate Brown of Portland, Oregon, spoke.", [("Portland", "US")]),
        ("Our sister city Ibaraki, Osaka, sent students.", [("Ibaraki", "JP")]),
        ("Atlanta, Georgia, welcomed them.", [("Atlanta", "US")]),
        ("Denver's sister city Kunming sent tea growers.", [("Denver", "US"), ("Kunming", "CN")]),
        ("The festival in Split drew crowds.", [("Split", "HR")]),
        ("Kunming and Denver exchanged art students.", [("Kunming", "CN"), ("Denver", "US")]),
        ("Teachers from Accra and Ouagadougou met.", [("Accra", "GH"), ("Ouagadougou", "BF")]),
        ("The students flew from Sydney to Regina.", [("Sydney", "AU"), ("Regina", "CA")]),
        ("The Charlotte Sister Cities committee met.", [("Charlotte", "US")]),
    ],
)
def test_evidence_links_and_chooses_among_namesakes(full_directory, text, expected):
    assert _found(full_directory, text) == expected


def test_a_qualifier_that_fits_no_namesake_drops_the_name(full_directory):
    # cities500 holds Paris, Kentucky; no Paris is in Alaska.
    assert _found(full_directory, "A choir from Paris, Alaska, sang.") == []


def test_namesakes_that_nothing_tells_apart_are_not_guessed(full_directory):
    assert _found(full_directory, "The families in Lincoln hosted them for a week.") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Our friends from Wien arrived on Tuesday.", ("Vienna", "AT")),
        ("Students from Praha performed a play.", ("Prague", "CZ")),
        ("A museum in Firenze lent the drawings.", ("Florence", "IT")),
        ("A youth orchestra from Köln will play.", ("Köln", "DE")),
    ],
)
def test_local_and_non_english_names_link(full_directory, text, expected):
    assert _found(full_directory, text) == [expected]


def test_each_link_keeps_the_evidence_that_made_it(full_directory):
    text = "Nashville's musicians played with friends in Tamworth. Belfast sent a fiddler."
    results = match_places(full_directory.index, text)["results"]
    by_name = {r["name"]: r for r in results}
    assert set(by_name) == {"Nashville", "Tamworth", "Belfast"}
    assert by_name["Tamworth"]["evidence"][0] == "'in Tamworth'"
    assert by_name["Belfast"]["evidence"] == [
        "'Belfast' — sister of Nashville, mentioned in the same story"
    ]
    for result in results:
        assert {"id", "name", "country_code", "mention", "evidence"} <= result.keys()


def test_many_texts_are_matched_in_order(full_directory):
    matches = match_places_many(
        full_directory.index, ["Students from Praha sang.", "Tell me more."]
    )["matches"]
    assert [[r["name"] for r in found] for found in matches] == [["Prague"], []]


def _nashville(full_directory) -> int:
    index = full_directory.index
    [nashville] = [
        city_id
        for city_id in index.ids_by_name["nashville"]
        if index.cities[city_id].region == "Tennessee" and index.own_name[city_id] == "nashville"
    ]
    return nashville


def test_the_cities_of_the_feeds_organisation_are_evidence(full_directory):
    index = full_directory.index
    text = "Tamworth welcomed the delegation last week."
    assert match_places(index, text)["results"] == []
    [tamworth] = match_places(index, text, context_city_ids=[_nashville(full_directory)])["results"]
    assert (tamworth["name"], tamworth["country_code"]) == ("Tamworth", "AU")
    assert tamworth["evidence"] == [
        "'Tamworth' — sister of Nashville, the city of the feed's organisation"
    ]
    # The organisation's city is evidence, not a mention: it is not linked by itself.
    assert all(r["name"] != "Nashville" for r in match_places(index, text, 50, [1])["results"])


def test_each_text_of_many_has_its_own_context(full_directory):
    nashville = _nashville(full_directory)
    texts = ["Tamworth welcomed us.", "Tamworth welcomed us."]
    matches = match_places_many(full_directory.index, texts, contexts=[[nashville], []])
    assert [[r["country_code"] for r in found] for found in matches["matches"]] == [["AU"], []]


@pytest.mark.parametrize(
    ("texts", "contexts"),
    [
        (["a", "b"], [[1]]),
        (["a"], "x"),
        (["a"], [["1"]]),
        (["a"], [[True]]),
        (["a"], [list(range(51))]),
    ],
)
def test_contexts_that_do_not_fit_the_texts_are_refused(full_directory, texts, contexts):
    with pytest.raises(InvalidInput):
        match_places_many(full_directory.index, texts, contexts=contexts)
