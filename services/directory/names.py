"""Place names folded to one comparable form: case, accents, punctuation and the common
abbreviations stop mattering ("St. Pétersbourg" and "saint petersbourg" fold alike)."""

from __future__ import annotations

import re
import unicodedata

# Letters that Unicode does not decompose into a base letter and a mark.
_LETTERS = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "œ": "oe",
        "ø": "o",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "ı": "i",
        "ħ": "h",
        "ŀ": "l",
        "ſ": "s",
    }
)
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—_/.,;:!?()\[\]{}\"'’‘`´«»„“”·•&+*#@%|\\<>=~^$]+")
_ABBREVIATIONS = {
    "st": "saint",
    "ste": "sainte",
    "sta": "santa",
    "sto": "santo",
    "mt": "mount",
    "ft": "fort",
    "pt": "port",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
_IATA_LIKE = re.compile(r"^[A-Z]{3,4}$")


def normalize(text: str) -> str:
    """The folded form used for matching: lower case, no accents, words separated by one
    space, common abbreviations expanded."""
    text = _CONTROL.sub("", text)
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_LETTERS))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    words = _SEPARATORS.sub(" ", stripped).split()
    return " ".join(_ABBREVIATIONS.get(word, word) for word in words)


def is_code(name: str) -> bool:
    """Airport and similar codes ("BOM", "CGN") that GeoNames lists among alternate names."""
    return bool(_IATA_LIKE.match(name))
