"""What the words around a name say about it: the context rules of story links.

A story's text is read as tokens; these functions look at the tokens before and after a name
and say whether the name is written as a place ("in Kraków", "Chester, England", "sister city
Kunming") or as a person or a thing ("Mayor Jacob Frey", "Abraham Lincoln", "Whitney
Houston's", "the Alhambra"). The word lists are English, as the organisation's stories are.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from services.directory.geography import CONTINENTS, folded_country_names
from services.directory.names import normalize

# Words after which a capitalized name is a person's: "Mayor Jacob Frey", "Dr. Sydney Okonkwo".
TITLES = frozenset(
    """
    mayor governor chancellor president senator ambassador councilmember councilman
    councilwoman councillor councilor commissioner professor prof dr mr mrs ms miss mx sir dame
    lord lady judge justice bishop archbishop father rev reverend pastor imam rabbi sheikh
    captain capt general gen colonel col lieutenant lt sergeant sgt officer dean minister
    premier chairman chairwoman chair superintendent principal coach king queen prince
    princess emperor pope aunt uncle grandma grandpa consul secretary
    representative rep sen gov deputy director headmaster headmistress
    """.split()  # noqa: SIM905 - a word list reads better as words
)
# "Lord Mayor of Dublin": a title followed by "of" names an office, not a person.
# Words before a name that say it is where something happens or comes from.
PLACE_PREPOSITIONS = frozenset(
    """
    in from to at near of visited visiting visit toured touring via outside around across
    towards toward into throughout within hosted
    """.split()  # noqa: SIM905
)
# A person speaks: "said Sami", "Regina told".
SPEECH_VERBS = frozenset(
    """
    said says told tells asked asks added adds explained explains recalled recalls smiled
    laughed replied replies wrote thanked thanks
    """.split()  # noqa: SIM905
)
# Words that may follow a place's name inside one capitalized run without making it a
# person's or an organisation's name: "Charlotte Sister Cities", "Minneapolis City Hall".
PLACE_RUN_WORDS = frozenset(
    """
    city cities sister sisters twin twins town hall council regional county municipal
    metropolitan metro delegation delegations committee association chamber
    """.split()  # noqa: SIM905
)
# Common given names (written by hand, English and international): alone, mid-sentence,
# such a name is a person's unless the words around it say place ("Christmas came early for
# Grace" is not Grace, Idaho; "in Sydney" is Sydney).
GIVEN_NAMES = frozenset(
    """
    aaron abby abdul abigail adam adrian ahmed aisha alan albert alex alexander alexandra
    alexandria alice alicia ali alison allen alma amanda amber amelia amy ana andre andrea
    andrew angela angelina anita ann anna anne annie anthony antonio april arthur ashley
    aubrey audrey aurora austin barbara ben benjamin bernard beth betty beverly bill bob
    bonnie brandon brenda brian brooke bruce bryan caleb camila carl carlos carmen carol
    caroline carolina catherine cecil celeste chad charles charlie charlotte chelsea chester
    chloe chris christian christina christine cindy claire clara clayton clifford clinton
    colin connie craig crystal cynthia dakota dale dallas dan daniel danielle david dawn
    dean deborah denise dennis derek diana diane dolores donald donna doris dorothy douglas
    dylan earl edgar edith edward eileen elena eli elijah elizabeth ella ellen emily emma
    eric erica erin esther ethan eugene eva evan evelyn fatima faith felix florence frances
    francis frank franklin fred gabriel gary george georgia gerald gloria grace grant greg
    gregory hannah harold harriet harrison harry hassan heather helen henry hope howard
    hugo ian irene iris irving isaac isabel isabella jack jackson jacob james jamie jane
    janet jared jasmine jason jean jeff jennifer jeremy jerome jesse jessica jesus jill jim
    joan joe john johnny jonathan jordan jorge jose joseph joshua joy joyce juan judith
    judy julia julian julie justin karen kate katherine kathleen katie keith kelly kenneth
    kevin kim kimberly kingston kyle laura lauren lawrence leah lee leo leon lewis liam
    lily lincoln linda lisa logan lois lorraine louis louise lucas lucy luis luke lydia
    madison marcus margaret maria marian marie marion mark marshall martha martin mary
    mason matthew maureen maya megan melissa michael michelle miguel milan miranda mohamed
    mohammed molly monica nancy natalie nathan neil nicholas nicole noah norman olivia
    omar orlando oscar pamela patricia patrick paul paula peter philip phoebe rachel ralph
    raymond rebecca regina richard rita robert roberto roger ronald rose ruby russell ruth
    ryan sadie salem sally sam sami samuel sandra sara sarah scott sean sebastian sergio
    sharon shirley sidney simon sofia sophia stanley stella stephanie stephen steven
    sydney tamara teresa terry theodore thomas tiffany timothy tina todd tom tony tracy troy
    tyler valerie vanessa vera veronica victor victoria vincent violet virginia walter wanda
    warren wayne wendy william wilson yusuf zachary zoe
    """.split()  # noqa: SIM905
)
CALENDAR = frozenset(
    """
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday
    """.split()  # noqa: SIM905
)
# Common English words that are also names of towns: alone they are not evidence.
COMMON_WORDS = frozenset(
    """
    a about after all also and any are art as at back bath be beach bear best big black blue
    bridge brown buffalo by camp can cape center central church city clay college come
    commerce concord corona day deal division does early east eden enterprise even fair faith
    fall field fields first five for formosa fort forest four freedom from gap garden gold
    golden good grand green grove had harbor has have haven he her hero highland hill home
    hope how i if in independence is it its justice just kind king lake land liberty little
    long lost love made make male man march media mercy middle mission mobile more most mount
    mountain much nice north not now oak of on one only opportunity or orange order our
    paradise park peace pleasant plain plains point port post power progress providence
    reading real red rich river rock royal rush saint said sale same san say see seven she
    short side silver six so south split spring springs star state station still sun sunrise
    sunset ten than that the their them then there these they this three time to today too
    two union unity up us valley view village vista was we well were west what when which
    white who will win with worth you young friendship harmony victory welcome tell concord
    """.split()  # noqa: SIM905
)
# Function words that begin a sentence before a name: "The Minneapolis-Najaf partnership".
_SENTENCE_END = re.compile(r"[.!?\n]")
_ABBREVIATED_TITLES = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "rev",
        "capt",
        "gen",
        "col",
        "lt",
        "sgt",
        "sen",
        "gov",
        "rep",
        "st",
    }
)
_SISTER_PHRASES = (
    ("sister", "city"),
    ("sister", "cities"),
    ("sister", "town"),
    ("twin", "town"),
    ("twin", "city"),
    ("partner", "city"),
    ("partner", "town"),
    ("friendship", "city"),
)
_DEMONYM_ENDINGS = ("i", "n", "an", "ian", "ese", "ish", "ic")


@dataclass(frozen=True, slots=True)
class Token:
    original: str
    folded: str
    start: int
    end: int

    @property
    def capitalized(self) -> bool:
        return self.original[:1].isupper()


class Context:
    """The tokens of one text and the gaps between them."""

    def __init__(self, text: str, tokens: list[Token]):
        self.text = text
        self.tokens = tokens

    def gap_before(self, position: int) -> str:
        """The characters between a token and the one before it (or the text's start)."""
        start = self.tokens[position - 1].end if position > 0 else 0
        return self.text[start : self.tokens[position].start]

    def word(self, position: int) -> str:
        return self.tokens[position].folded if 0 <= position < len(self.tokens) else ""

    def starts_sentence(self, position: int) -> bool:
        if position == 0:
            return True
        if self.word(position - 1) in _ABBREVIATED_TITLES:
            return False
        return bool(_SENTENCE_END.search(self.gap_before(position)))

    def joined(self, position: int) -> bool:
        """Whether a token continues the words of the one before it (only spaces between:
        "Minneapolis-Najaf" is two names)."""
        return position > 0 and self.gap_before(position).strip() == ""

    def after_title(self, start: int) -> bool:
        """A title before the capitalized run holding this name: "Mayor Jacob Frey"."""
        position = start
        while position > 0 and self.joined(position) and self.tokens[position - 1].capitalized:
            if self.word(position - 1) in TITLES:
                return True
            position -= 1
        previous = position - 1
        if previous >= 0 and self.word(previous) in _ABBREVIATED_TITLES - {"st"}:
            return self.gap_before(position).strip() in (".", "")
        return False

    def run_bounds(self, start: int, end: int) -> tuple[int, int]:
        """The capitalized run a name at tokens [start, end) stands in, without a leading
        sentence-opening word or a title (which split runs)."""
        first = start
        while (
            first > 0
            and self.joined(first)
            and self.tokens[first - 1].capitalized
            and self.word(first - 1) not in TITLES
            and not self.starts_sentence(first)
            and not (self.starts_sentence(first - 1) and self.word(first - 1) in COMMON_WORDS)
        ):
            first -= 1
        last = end
        while (
            last < len(self.tokens)
            and self.joined(last)
            and self.tokens[last].capitalized
            and self.word(last) not in TITLES
        ):
            last += 1
        return first, last

    def possessive_after(self, end: int) -> bool:
        return self.word(end) == "s" and self.gap_before(end) in ("'", "\u2019")

    def next_word(self, end: int) -> str:
        """The word after a name, past a possessive "'s"."""
        return self.word(end + 1) if self.possessive_after(end) else self.word(end)

    def preposition_before(self, start: int) -> str | None:
        if start == 0 or self.gap_before(start).strip():
            return None
        word = self.word(start - 1)
        return (
            word if word in PLACE_PREPOSITIONS and not self.tokens[start - 1].capitalized else None
        )

    def sister_phrase_before(self, start: int) -> bool:
        """'sister city Kunming', 'the sister city of Troy', "Corning's sister city, Kawasaki"."""
        position = start - 1
        if self.word(position) == "of":
            position -= 1
        pair = (self.word(position - 1), self.word(position))
        return pair in _SISTER_PHRASES

    def speech_next_to(self, start: int, end: int) -> bool:
        before = self.word(start - 1) if start > 0 and not self.gap_before(start).strip() else ""
        after = (
            self.word(end) if end < len(self.tokens) and not self.gap_before(end).strip() else ""
        )
        return before in SPEECH_VERBS or after in SPEECH_VERBS

    def definite_thing(self, start: int, end: int) -> bool:
        """'the Alhambra;', 'the University of Minnesota': a name after "the" that modifies no
        noun is a thing, not a city ("the Najaf committee" is the city)."""
        if start == 0 or self.word(start - 1) != "the":
            return False
        if end >= len(self.tokens) or not self.joined(end):
            return True
        if self.word(end) in PLACE_RUN_WORDS:
            return False
        return self.tokens[end].capitalized or self.word(end) == "of"

    def qualifiers_after(self, end: int) -> list[tuple[int, str, str]]:
        """'X, Y' where Y may be a country or a region: (tokens spanned, folded text,
        original text) for each length of Y, longest first, for the caller to test."""
        if end >= len(self.tokens) or self.gap_before(end).strip() != ",":
            return []
        found = []
        for size in range(min(4, len(self.tokens) - end), 0, -1):
            words = self.tokens[end : end + size]
            if words[0].capitalized and all(self.joined(end + n) for n in range(1, size)):
                folded = " ".join(token.folded for token in words)
                found.append((size, folded, self.text[words[0].start : words[-1].end]))
        return found


@functools.cache
def country_words() -> dict[str, str]:
    return {name: code for name, code in folded_country_names().items() if len(name) >= 4}


@functools.cache
def _continents() -> frozenset[str]:
    return frozenset(normalize(name) for name in CONTINENTS.values())


def country_of(phrase: str) -> str | None:
    """The country a folded phrase names ("iraq", "england", "the netherlands"), if any."""
    return country_words().get(phrase) or folded_country_names().get(phrase)


def is_country_or_people(phrase: str) -> bool:
    """A country, a continent or a people ("Iraq", "Africa", "Iraqi", "Thai"): never a city
    by itself."""
    if country_of(phrase) or phrase in _continents():
        return True
    names = country_words()
    for ending in _DEMONYM_ENDINGS:
        stem = phrase.removesuffix(ending)
        if stem != phrase and (stem in names or stem + "a" in names or stem + "y" in names):
            return True
    return phrase in {"thai", "french", "dutch", "swiss", "greek", "welsh", "filipino", "roman"}
