"""First-level regions as people write them: the region names the directory holds (GeoNames'
English admin1 names, "Bavaria", "Oregon"), their ISO 3166-2 names and codes from pycountry
("Bayern", "BY"), and the postal abbreviations of the United States, Canada and Australia
("OR", "Calif.", "B.C.", "Qld").

The two sources are joined by name, per country: equal folded names, then the names without
their type words ("Saga Prefecture" is ISO's "Saga"), then pycountry's English translation,
then the explicit table below where English and local names share nothing ("Bavaria" is
"Bayern"), then a close spelling or a longer form when only one fits ("Castille and Leon" is
"Castilla y León", "Irkutsk" is "Irkutskaya oblast'").
A region that joins nothing still answers to its own name.
"""

from __future__ import annotations

import functools
import gettext
import re
from collections import defaultdict
from collections.abc import Iterable

import pycountry
from rapidfuzz import fuzz, process

from services.directory.geography import countries
from services.directory.names import normalize

RegionKey = tuple[str, str]  # (country code, region name as the directory holds it)

# Words that say what kind of region it is, not which one.
_TYPE_WORDS = {
    "autonomous",
    "city",
    "community",
    "comunidad",
    "de",
    "del",
    "district",
    "foral",
    "krai",
    "kray",
    "municipality",
    "oblast",
    "okrug",
    "prefecture",
    "principado",
    "province",
    "region",
    "republic",
    "respublika",
    "sar",
    "sheng",
    "shi",
    "state",
    "territory",
    "voivodeship",
    "voivodship",
    "zizhiqu",
}
# Shorter spellings that ISO 3166-2 does not give: postal codes where they differ from the ISO
# suffix, and the abbreviations of newspapers and addresses. Keyed by ISO code.
POSTAL_ABBREVIATIONS = {
    "US-AL": ["Ala."],
    "US-AZ": ["Ariz."],
    "US-AR": ["Ark."],
    "US-CA": ["Calif.", "Cal."],
    "US-CO": ["Colo."],
    "US-CT": ["Conn."],
    "US-DE": ["Del."],
    "US-DC": ["D.C.", "Washington DC"],
    "US-FL": ["Fla."],
    "US-GA": ["Ga."],
    "US-IL": ["Ill."],
    "US-IN": ["Ind."],
    "US-KS": ["Kan.", "Kans."],
    "US-KY": ["Ky."],
    "US-LA": ["La."],
    "US-MD": ["Md."],
    "US-MA": ["Mass."],
    "US-MI": ["Mich."],
    "US-MN": ["Minn."],
    "US-MS": ["Miss."],
    "US-MO": ["Mo."],
    "US-MT": ["Mont."],
    "US-NE": ["Neb.", "Nebr."],
    "US-NV": ["Nev."],
    "US-NH": ["N.H."],
    "US-NJ": ["N.J."],
    "US-NM": ["N.M.", "N.Mex."],
    "US-NY": ["N.Y."],
    "US-NC": ["N.C."],
    "US-ND": ["N.D.", "N.Dak."],
    "US-OK": ["Okla."],
    "US-OR": ["Ore.", "Oreg."],
    "US-PA": ["Pa.", "Penn.", "Penna."],
    "US-RI": ["R.I."],
    "US-SC": ["S.C."],
    "US-SD": ["S.D.", "S.Dak."],
    "US-TN": ["Tenn."],
    "US-TX": ["Tex."],
    "US-UT": ["Ut."],
    "US-VT": ["Vt."],
    "US-VA": ["Va."],
    "US-WA": ["Wash."],
    "US-WV": ["W.Va.", "W.V."],
    "US-WI": ["Wis.", "Wisc."],
    "US-WY": ["Wyo."],
    "CA-AB": ["Alta."],
    "CA-BC": ["B.C."],
    "CA-MB": ["Man."],
    "CA-NB": ["N.B."],
    "CA-NL": ["Nfld.", "NF", "Newfoundland"],
    "CA-NS": ["N.S."],
    "CA-NT": ["N.W.T.", "NWT"],
    "CA-ON": ["Ont."],
    "CA-PE": ["P.E.I.", "PEI"],
    "CA-QC": ["Que.", "PQ", "P.Q.", "Qué."],
    "CA-SK": ["Sask."],
    "CA-YT": ["Y.T.", "Yuk."],
    "AU-ACT": ["A.C.T."],
    "AU-NSW": ["N.S.W."],
    "AU-NT": ["N.T."],
    "AU-QLD": ["Qld.", "Queensl."],
    "AU-SA": ["S.A."],
    "AU-TAS": ["Tas.", "Tassie"],
    "AU-VIC": ["Vic."],
    "AU-WA": ["W.A."],
}
# Directory region -> ISO 3166-2 code, where the English and the local name share nothing a
# rule could find. Checked by a test: every code exists and every name is a region we hold.
LINKS = {
    ("US", "Washington, D.C."): "US-DC",
    ("DE", "Bavaria"): "DE-BY",
    ("DE", "Baden-Wuerttemberg"): "DE-BW",
    ("DE", "Hesse"): "DE-HE",
    ("DE", "Lower Saxony"): "DE-NI",
    ("DE", "North Rhine-Westphalia"): "DE-NW",
    ("DE", "Saxony"): "DE-SN",
    ("DE", "Saxony-Anhalt"): "DE-ST",
    ("DE", "Thuringia"): "DE-TH",
    ("AT", "Carinthia"): "AT-2",
    ("AT", "Lower Austria"): "AT-3",
    ("AT", "Upper Austria"): "AT-4",
    ("AT", "Styria"): "AT-6",
    ("AT", "Tyrol"): "AT-7",
    ("AT", "Vienna"): "AT-9",
    ("CH", "Basel-City"): "CH-BS",
    ("CH", "Bern"): "CH-BE",
    ("CH", "Geneva"): "CH-GE",
    ("CH", "Grisons"): "CH-GR",
    ("CH", "Lucerne"): "CH-LU",
    ("CH", "Saint Gallen"): "CH-SG",
    ("IT", "Aosta Valley"): "IT-23",
    ("IT", "Apulia"): "IT-75",
    ("IT", "Basilicate"): "IT-77",
    ("IT", "Latium"): "IT-62",
    ("IT", "Lombardy"): "IT-25",
    ("IT", "Piedmont"): "IT-21",
    ("IT", "Sardinia"): "IT-88",
    ("IT", "Sicily"): "IT-82",
    ("IT", "The Marches"): "IT-57",
    ("IT", "Tuscany"): "IT-52",
    ("ES", "Andalusia"): "ES-AN",
    ("ES", "Balearic Islands"): "ES-IB",
    ("ES", "Basque Country"): "ES-PV",
    ("ES", "Canary Islands"): "ES-CN",
    ("ES", "Castille and Leon"): "ES-CL",
    ("ES", "Castille-La Mancha"): "ES-CM",
    ("ES", "Catalonia"): "ES-CT",
    ("ES", "Navarre"): "ES-NC",
    ("ES", "Valencia"): "ES-VC",
    ("FR", "Brittany"): "FR-BRE",
    ("FR", "Corsica"): "FR-20R",
    ("PL", "Greater Poland Voivodeship"): "PL-30",
    ("PL", "Lesser Poland Voivodeship"): "PL-12",
    ("PL", "Lodz Voivodeship"): "PL-10",
    ("PL", "Lower Silesian Voivodeship"): "PL-02",
    ("PL", "Lublin Voivodeship"): "PL-06",
    ("PL", "Lubusz"): "PL-08",
    ("PL", "Masovian Voivodeship"): "PL-14",
    ("PL", "Opole Voivodeship"): "PL-16",
    ("PL", "Podlasie"): "PL-20",
    ("PL", "Pomeranian Voivodeship"): "PL-22",
    ("PL", "Silesian Voivodeship"): "PL-24",
    ("PL", "Subcarpathian Voivodeship"): "PL-18",
    ("PL", "Warmian-Masurian Voivodeship"): "PL-28",
    ("PL", "West Pomeranian Voivodeship"): "PL-32",
    ("PL", "Kujawsko-Pomorskie"): "PL-04",
    ("CN", "Inner Mongolia"): "CN-NM",
    ("CN", "Tibet Autonomous Region"): "CN-XZ",
    ("MX", "Mexico City"): "MX-CMX",
    ("BR", "Federal District"): "BR-DF",
    ("IN", "NCT"): "IN-DL",
    ("IN", "Pondicherry"): "IN-PY",
    ("IN", "Kashmir"): "IN-JK",
}
# Two names this close (rapidfuzz ratio, 0-100) and no other as close: the same region.
CLOSE_SPELLING = 85
_BRACKETS = re.compile(r"\[([^\[\]]*)\]")  # no "[" inside: a run of "[" is not rescanned
_ISO_CODE = re.compile(r"\b[A-Z]{2}-[A-Z0-9]{1,3}\b")


def _variants(name: str) -> set[str]:
    """Folded forms of an ISO name: "Catalunya [Cataluña]" gives both names; "Murcia, Región
    de" gives "murcia" and "region de murcia"; type words dropped as another form."""
    name = _ISO_CODE.sub("", name)
    names = [_BRACKETS.sub("", name), *_BRACKETS.findall(name)]
    forms: set[str] = set()
    for text in names:
        for part in text.split(";"):
            head, _, tail = part.partition(",")
            for candidate in (head, f"{tail} {head}" if tail else head):
                folded = normalize(candidate)
                if folded:
                    forms.add(folded)
                    bare = _without_type_words(folded)
                    if bare:
                        forms.add(bare)
    return forms


def _without_type_words(folded: str) -> str:
    return " ".join(word for word in folded.split() if word not in _TYPE_WORDS)


@functools.cache
def _english() -> gettext.NullTranslations:
    return gettext.translation("iso3166-2", pycountry.LOCALES_DIR, languages=["en"], fallback=True)


@functools.cache
def _subdivisions(country_code: str) -> tuple:
    """ISO 3166-2 first-level subdivisions of a country (those with no parent)."""
    try:
        found = pycountry.subdivisions.get(country_code=country_code) or []
    except KeyError:
        return ()
    return tuple(sub for sub in found if sub.parent_code is None)


def load_tables() -> None:
    """Read pycountry's subdivisions and their English names now. They stay for the process's
    life: read in the middle of the search index's build, their many small objects would be
    scattered among the build's temporary ones and keep that memory from going back."""
    _english()
    for country_code in countries():
        _subdivisions(country_code)


def _iso_forms(subdivision) -> set[str]:
    forms = _variants(subdivision.name)
    english = _english().gettext(subdivision.name)
    if english != subdivision.name:
        forms |= _variants(english)
    return forms


def _link(country_code: str, regions: Iterable[str]) -> dict[str, object]:
    """Directory region name -> its ISO subdivision, for the regions of one country."""
    subdivisions = _subdivisions(country_code)
    by_form: dict[str, list] = defaultdict(list)
    for sub in subdivisions:
        for form in _iso_forms(sub):
            by_form[form].append(sub)
            by_form[form.replace(" ", "")].append(sub)
    by_code = {sub.code: sub for sub in subdivisions}
    linked: dict[str, object] = {}
    unlinked: list[str] = []
    for region in regions:
        folded = normalize(region)
        forms = {folded, _without_type_words(folded)}
        forms |= {form.replace(" ", "") for form in forms}
        matches = {sub.code: sub for form in forms for sub in by_form.get(form, ())}
        explicit = LINKS.get((country_code, region))
        if explicit in by_code:
            linked[region] = by_code[explicit]
        elif len(matches) == 1:
            linked[region] = next(iter(matches.values()))
        else:
            unlinked.append(region)
    free = {sub.code: sub for sub in subdivisions if sub not in linked.values()}
    choices = {
        _without_type_words(form): code
        for code, sub in free.items()
        for form in _iso_forms(sub)
        if _without_type_words(form)
    }
    for region in unlinked:
        folded = _without_type_words(normalize(region))
        close = process.extract(
            folded, list(choices), scorer=fuzz.ratio, score_cutoff=CLOSE_SPELLING, limit=5
        )
        codes = {choices[form] for form, _score, _position in close}
        if not codes and len(folded) >= 4:
            # "Irkutsk" is ISO's "Irkutskaya oblast'".
            codes = {code for form, code in choices.items() if form.startswith(folded)}
        if len(codes) == 1:
            linked[region] = free[codes.pop()]
    return linked


def region_aliases(keys: Iterable[RegionKey]) -> dict[str, frozenset[RegionKey]]:
    """Folded alias -> the regions it may mean, for the directory's (country, region) pairs:
    the region's own name, its ISO names, its ISO code with and without the country
    ("ON", "CA-ON"), and its postal abbreviations."""
    by_country: dict[str, set[str]] = defaultdict(set)
    for country_code, region in keys:
        by_country[country_code].add(region)
    aliases: dict[str, set[RegionKey]] = defaultdict(set)
    for country_code, regions in by_country.items():
        linked = _link(country_code, regions)
        for region in regions:
            key = (country_code, region)
            folded = normalize(region)
            names = {folded, _without_type_words(folded)}
            subdivision = linked.get(region)
            if subdivision is not None:
                names |= _iso_forms(subdivision)
                suffix = subdivision.code.split("-", 1)[1]
                if suffix.isalpha():
                    names.add(normalize(suffix))
                names.add(normalize(subdivision.code))
                abbreviations = POSTAL_ABBREVIATIONS.get(subdivision.code, ())
                names |= {normalize(abbreviation) for abbreviation in abbreviations}
            for name in names:
                if name:
                    aliases[name].add(key)
    return {alias: frozenset(found) for alias, found in aliases.items()}
