"""The symmetric-deletion index finds every name one edit away, as a brute-force comparison
with rapidfuzz's own Damerau-Levenshtein distance does."""

import random

from rapidfuzz.distance import DamerauLevenshtein

from services.directory.typos import DeletionIndex, TwoEditIndex

NAMES = ["bombay", "bambey", "mumbai", "minneapolis", "nashville", "koln", "cologne", "abomey"]


def test_every_name_one_edit_away_is_a_candidate():
    index = DeletionIndex(NAMES)
    rng = random.Random(14)
    letters = "abcdefghijklmnopqrstuvwxyz"
    for _ in range(300):
        word = list(rng.choice(NAMES))
        position = rng.randrange(len(word))
        edit = rng.choice(("drop", "add", "change", "swap"))
        if edit == "drop":
            del word[position]
        elif edit == "add":
            word.insert(position, rng.choice(letters))
        elif edit == "change":
            word[position] = rng.choice(letters)
        elif position + 1 < len(word):
            word[position], word[position + 1] = word[position + 1], word[position]
        typo = "".join(word)
        near = {name for name in NAMES if DamerauLevenshtein.distance(typo, name) <= 1}
        assert near <= index.candidates(typo), typo


def test_bombey_reaches_both_bombay_and_bambey():
    assert {"bombay", "bambey", "abomey"} <= DeletionIndex(NAMES).candidates("bombey")


def test_an_empty_index_finds_nothing():
    assert DeletionIndex().candidates("anything") == set()


def test_every_name_two_edits_away_is_a_candidate_of_the_two_edit_index():
    index = TwoEditIndex(enumerate(NAMES))
    rng = random.Random(14)
    letters = "abcdefghijklmnopqrstuvwxyz"
    for _ in range(300):
        word = list(rng.choice(NAMES))
        for _edit in range(2):
            position = rng.randrange(len(word))
            edit = rng.choice(("drop", "add", "change"))
            if edit == "drop" and len(word) > 1:
                del word[position]
            elif edit == "add":
                word.insert(position, rng.choice(letters))
            else:
                word[position] = rng.choice(letters)
        typo = "".join(word)
        near = {n for n, name in enumerate(NAMES) if DamerauLevenshtein.distance(typo, name) <= 2}
        assert near <= index.candidate_numbers(typo), typo


def test_philadelfia_is_two_edits_from_philadelphia_and_one_deep_deletion_misses_it():
    assert not DeletionIndex(["philadelphia"]).candidates("philadelfia")
    assert TwoEditIndex([(7, "philadelphia")]).candidate_numbers("philadelfia") == {7}
