"""City Search's index: every name of every place, loaded from the directory's database and
reloaded when the directory's version moves (``IndexHolder``). ``search`` parses and ranks.

Columnar, because a row of Python objects a place and a dictionary entry a name cost
kilobytes a place and most of the load's time (docs/performance.md):
- the folded names, sorted and distinct, in one UTF-8 string with their offsets
  (``NameTable``): an exact name and a prefix are a binary search, UTF-8's byte order being
  the code points' order;
- the places of each name as rows of the city columns, in one array with each name's offset;
- the city columns: ids, populations, coordinates and the position of each city's own name as
  arrays; country codes and regions as lists of a few thousand shared strings; display names
  as another string table;
- the best cities of a prefix too wide to scan per keystroke, ranked on first use from those
  arrays (a place whose own name starts with it first, then partnerships, then people) and
  kept;
- the typo index over the same name numbers (``typos``).

Chosen over SQLite FTS5 because FTS5 would give a different engine on PostgreSQL (answers
must be identical on both) and its prefix and fuzzy matching are not the edit distances the
ranking rule is written in; over a cache file of the arrays because building them takes a few
seconds, which is within the load budget, and a file keyed by version is one more thing to
invalidate.
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import ctypes.util
import os
import threading
import time
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.directory.index_version import current_version
from services.directory.models import City, CityName, Partnership
from services.directory.names import normalize
from services.directory.regions import RegionKey, region_aliases
from services.directory.regions import load_tables as load_region_tables
from services.directory.typos import DeletionIndex, TwoEditIndex, sorted_distinct
from shared.logs import get_logger

log = get_logger(__name__)

# A prefix that begins more names than this is too wide to scan per keystroke: its best
# cities are ranked once, on first use.
WIDE_PREFIX_NAMES = 256
WIDE_PREFIX_MAX_CHARS = 8
WIDE_PREFIX_KEEP = 100
# Cities of this many people are reached by two slips of their own name, whatever its length.
BIG_CITY = 100_000
# Above every code point: a prefix's names end before prefix + this.
_AFTER_ALL = "\U0010ffff"


@dataclass(frozen=True, slots=True)
class CityRecord:
    id: int
    name: str
    country_code: str
    region: str | None
    latitude: float
    longitude: float
    population: int


class StringTable(Sequence[str]):
    """Strings in one UTF-8 bytes object with their offsets: about 1 byte a character and 8 an
    entry, where a list of str costs about 57 bytes an entry."""

    def __init__(self, strings: Sequence[str]):
        encoded = [text.encode() for text in strings]
        self._blob = b"".join(encoded)
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(item) for item in encoded], out=offsets[1:])
        self._offsets = array("I", offsets.astype(np.uint32).tobytes())
        if len(self._blob) >= 2**32:
            self._offsets = array("q", offsets.tobytes())

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, position):
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        return self.encoded(position).decode()

    def encoded(self, position: int) -> bytes:
        if position < 0:
            position += len(self)
        return self._blob[self._offsets[position] : self._offsets[position + 1]]


class _Encoded(Sequence[bytes]):
    def __init__(self, table: StringTable):
        self.table = table

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, position):
        return self.table.encoded(position)


class NameTable(StringTable):
    """Sorted distinct names: a name's position by binary search, and a prefix's span. Every
    ``SAMPLE_EVERY``th name is also kept as bytes, so the search first bisects that list in
    C and slices the string table only in the last few steps."""

    SAMPLE_EVERY = 64

    def __init__(self, sorted_names: Sequence[str]):
        super().__init__(sorted_names)
        self._keys = _Encoded(self)
        # Made on first use, once the index's build has freed its temporary objects: small
        # objects made among them would keep the memory they were in from going back.
        self._sample: list[bytes] | None = None

    def _bisect(self, key: bytes, start: int = 0) -> int:
        step = self.SAMPLE_EVERY
        sample = self._sample
        if sample is None:
            sample = [self.encoded(i) for i in range(0, len(self), step)]
            self._sample = sample
        sampled = bisect.bisect_left(sample, key)
        low = max(start, (sampled - 1) * step + 1 if sampled else 0)
        high = max(low, min(sampled * step, len(self)))
        return bisect.bisect_left(self._keys, key, low, high)

    def position(self, name: str) -> int | None:
        key = name.encode()
        at = self._bisect(key)
        return at if at < len(self) and self.encoded(at) == key else None

    def span(self, prefix: str) -> tuple[int, int]:
        """Where the names that begin with ``prefix`` start and end."""
        start = self._bisect(prefix.encode())
        return start, self._bisect((prefix + _AFTER_ALL).encode(), start)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.position(name) is not None


class SearchIndex:
    """Rows of cities (0..n-1, by id) and positions of names (0..m-1, sorted)."""

    def __init__(
        self,
        version: int,
        cities: Sequence[CityRecord] | Sequence[tuple],
        names: list[tuple[int, str]],
        pairs: list[tuple[int, int]],
        folded_own: dict[int, tuple[str, str]] | None = None,
        places: Places | None = None,
    ):
        """``cities``: records, or rows of their fields in order. ``folded_own``: city id ->
        (its own name, folded) as the directory holds them, so that only names changed since
        are folded again. ``places``: the countries and regions of the cities, made before
        their rows were read (see ``load_index``)."""
        self.version = version
        rows = sorted(
            (city if isinstance(city, tuple) else _fields(city) for city in cities),
            key=lambda city: city[0],
        )
        count = len(rows)
        city_ids, city_names, countries, regions, latitudes, longitudes, people = (
            zip(*rows, strict=True) if rows else [()] * 7
        )
        del rows
        if places is None:
            places = Places(set(zip(countries, regions, strict=True)))
        self.ids = array("q", city_ids)
        ids = np.frombuffer(self.ids, dtype=np.int64)
        self.city_names = StringTable(city_names)
        self.country = [places.country[code] for code in countries]
        self.region = [places.region.get(region) for region in regions]
        self.latitude = array("d", latitudes)
        self.longitude = array("d", longitudes)
        self.population = array("q", people)
        population = np.frombuffer(self.population, dtype=np.int64)
        del countries, regions, latitudes, longitudes, people

        self.sisters: Mapping[int, frozenset[int]] = _Sisters(self, pairs)
        self.sister_counts = self.sisters.counts

        folded_own = folded_own or {}
        own = [
            _folded(name, folded_own.get(city_id))
            for city_id, name in zip(city_ids, city_names, strict=True)
        ]
        del city_ids, city_names
        named_ids = np.fromiter((city_id for city_id, _ in names), np.int64, len(names))
        named_rows = _rows_of_ids(ids, named_ids)
        known = np.flatnonzero(named_rows >= 0).tolist()
        sorted_names, name_at = _numbered(own + [names[at][1] for at in known])
        self.names = NameTable(sorted_names)
        own_position = name_at[:count]
        self.own_position = array("q", own_position.tobytes())
        name_of = name_at[count:]
        row_of = named_rows[known]
        del name_at, own, known, named_rows, named_ids
        pairs_key = sorted_distinct(
            np.concatenate([own_position << 32 | np.arange(count), name_of << 32 | row_of])
        )
        del name_of, row_of
        self.name_rows = array("i", (pairs_key & 0xFFFFFFFF).astype(np.int32).tobytes())
        starts = np.searchsorted(pairs_key >> 32, np.arange(len(sorted_names) + 1))
        del pairs_key
        self.name_starts = array("I", starts.astype(np.uint32).tobytes())

        # Cities ranked by partnerships, then people: the order a wide prefix keeps.
        order = np.lexsort(
            (np.arange(count), -population, -np.asarray(self.sister_counts, dtype=np.int64))
        )
        self._rank = np.empty(count, dtype=np.int32)
        self._rank[order] = np.arange(count)
        self._wide: dict[str, tuple[int, ...] | None] = {}

        self.region_names = places.region_names
        self.region_aliases: dict[str, frozenset[RegionKey]] = places.aliases
        # country code or (country code, region) -> the rows of the cities there
        self.rows_in = _RowsIn(places, self.country, self.region)
        self.typos = DeletionIndex(sorted_names, filed_as=self.names)
        self._big_city_typos: TwoEditIndex | None = None
        self._big_city_lock = threading.Lock()

        self.cities: Mapping[int, CityRecord] = _ByCityId(self, self.record)
        self.ids_by_name: Mapping[str, tuple[int, ...]] = _IdsByName(self)
        self.own_name: Mapping[int, str] = _ByCityId(
            self, lambda row: self.names[self.own_position[row]]
        )

    def __len__(self) -> int:
        return len(self.ids)

    def row(self, city_id: int) -> int | None:
        """A city's row: the ids are sorted, so a binary search (a dictionary of every id
        would be hundreds of thousands of small objects)."""
        at = bisect.bisect_left(self.ids, city_id)
        return at if at < len(self.ids) and self.ids[at] == city_id else None

    def record(self, row: int) -> CityRecord:
        return CityRecord(
            self.ids[row],
            self.city_names[row],
            self.country[row],
            self.region[row],
            self.latitude[row],
            self.longitude[row],
            self.population[row],
        )

    @property
    def big_city_typos(self) -> TwoEditIndex:
        """The two-deep typo index of big cities' own names, made on first use: few queries
        need it, and making it would add a tenth to the index's load."""
        if self._big_city_typos is None:
            with self._big_city_lock:
                if self._big_city_typos is None:
                    population = np.frombuffer(self.population, dtype=np.int64)
                    own = np.frombuffer(self.own_position, dtype=np.int64)
                    big = sorted(set(own[population >= BIG_CITY].tolist()))
                    self._big_city_typos = TwoEditIndex((at, self.names[at]) for at in big)
        return self._big_city_typos

    def rows_named(self, position: int) -> array:
        return self.name_rows[self.name_starts[position] : self.name_starts[position + 1]]

    def sister_count(self, city_id: int) -> int:
        row = self.row(city_id)
        return 0 if row is None else self.sister_counts[row]

    def wide_prefix(self, prefix: str) -> tuple[int, ...] | None:
        """The best rows for a prefix that begins too many names to scan, else None."""
        if prefix in self._wide:
            return self._wide[prefix]
        ranked = None
        if len(prefix) <= WIDE_PREFIX_MAX_CHARS:
            start, end = self.names.span(prefix)
            if end - start > WIDE_PREFIX_NAMES:
                name_rows = np.frombuffer(self.name_rows, dtype=np.int32)
                rows = np.unique(name_rows[self.name_starts[start] : self.name_starts[end]])
                own = np.frombuffer(self.own_position, dtype=np.int64)[rows]
                elsewhere = (own < start) | (own >= end)
                keys = elsewhere.astype(np.int64) * len(self) + self._rank[rows]
                ranked = tuple(rows[np.argsort(keys)[:WIDE_PREFIX_KEEP]].tolist())
        # Every process asks for few prefixes, and the same ones: worth keeping all.
        self._wide[prefix] = ranked
        return ranked


class Places:
    """The countries and regions of the directory's cities, with what City Search reads
    places by: region names folded and every alias of each region (``regions``)."""

    def __init__(self, keys: set[tuple[str, str | None]]):
        # Each string once: the cities' columns hold these very objects.
        self.country = {country: country for country, _ in keys}
        self.region = {region: region for _, region in keys if region}
        regions = {(country, self.region[region]) for country, region in keys if region}
        self.region_names = frozenset(normalize(region) for _, region in regions)
        self.aliases = region_aliases(regions)
        self.key_number = {
            key: number
            for number, key in enumerate(sorted(self.country) + sorted(regions, key=str))
        }


class _RowsIn(Mapping[object, array]):
    """The rows of the cities in each country and region, grouped in one array."""

    def __init__(self, places: Places, country: list[str], region: list[str | None]):
        numbers = places.key_number
        keys = np.fromiter((numbers[code] for code in country), np.int64, len(country)).tolist() + [
            numbers[(code, name)] if name else -1
            for code, name in zip(country, region, strict=True)
        ]
        keys = np.asarray(keys, dtype=np.int64)
        rows = np.concatenate([np.arange(len(country))] * 2)
        kept = keys >= 0
        keys, rows = keys[kept], rows[kept]
        order = np.argsort(keys, kind="stable")
        self._rows = array("i", rows[order].astype(np.int32).tobytes())
        starts = np.searchsorted(keys[order], np.arange(len(numbers) + 1))
        self._starts = array("q", starts.astype(np.int64).tobytes())
        self._numbers = numbers

    def __getitem__(self, key) -> array:
        number = self._numbers.get(key)
        if number is None:
            raise KeyError(key)
        return self._rows[self._starts[number] : self._starts[number + 1]]

    def __iter__(self) -> Iterator:
        return iter(self._numbers)

    def __len__(self) -> int:
        return len(self._numbers)


def _numbered(names: list[str]) -> tuple[list[str], np.ndarray]:
    """The distinct names sorted, and each name's position among them: one sort and one
    pass, where a set, a sort and a dictionary of positions took twice as long."""
    order = sorted(range(len(names)), key=names.__getitem__)
    distinct: list[str] = []
    at = array("q", bytes(8 * len(names)))
    previous = None
    for number in order:
        name = names[number]
        if name != previous:
            distinct.append(name)
            previous = name
        at[number] = len(distinct) - 1
    return distinct, np.frombuffer(at, dtype=np.int64)


def _fields(city: CityRecord) -> tuple:
    return (
        city.id,
        city.name,
        city.country_code,
        city.region,
        city.latitude,
        city.longitude,
        city.population,
    )


def _rows_of_ids(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The row of each wanted id in the sorted ids, or -1 for an id not there."""
    at = np.searchsorted(ids, wanted)
    inside = at < len(ids)
    found = np.zeros(len(wanted), dtype=bool)
    found[inside] = ids[at[inside]] == wanted[inside]
    return np.where(found, at, -1)


class _Sisters(Mapping[int, frozenset[int]]):
    """Each city's partners by city id, kept as arrays (each city's partner rows in one
    array, where its partners begin in another): a dictionary of sets cost 60 bytes a
    partner and scattered small objects over the heap."""

    def __init__(self, index: SearchIndex, pairs: list[tuple[int, int]]):
        self.index = index
        ids = np.frombuffer(index.ids, dtype=np.int64)
        count = len(ids)
        ends = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        rows = _rows_of_ids(ids, ends.ravel()).reshape(-1, 2)
        rows = rows[(rows >= 0).all(axis=1) & (rows[:, 0] != rows[:, 1])]
        both = np.concatenate([rows, rows[:, ::-1]])
        both = np.unique(both[:, 0] << 32 | both[:, 1])
        sources, partners = both >> 32, both & 0xFFFFFFFF
        counts = np.bincount(sources, minlength=count).astype(np.int32)
        self.counts = array("i", counts.tobytes())
        starts = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(counts, out=starts[1:])
        self._starts = array("q", starts.tobytes())
        self._partners = array("q", ids[partners].tobytes())
        self._twinned = np.flatnonzero(counts)

    def __getitem__(self, city_id: int) -> frozenset[int]:
        row = self.index.row(city_id)
        if row is None or not self.counts[row]:
            raise KeyError(city_id)
        return frozenset(self._partners[self._starts[row] : self._starts[row + 1]])

    def __contains__(self, city_id: object) -> bool:
        row = self.index.row(city_id) if isinstance(city_id, int) else None
        return row is not None and self.counts[row] > 0

    def __iter__(self) -> Iterator[int]:
        ids = self.index.ids
        return (ids[row] for row in self._twinned.tolist())

    def __len__(self) -> int:
        return len(self._twinned)


class _ByCityId(Mapping[int, object]):
    """A column read by city id, as the index's users did when it was a dictionary."""

    def __init__(self, index: SearchIndex, read: Callable[[int], object]):
        self.index, self.read = index, read

    def __getitem__(self, city_id: int):
        row = self.index.row(city_id)
        if row is None:
            raise KeyError(city_id)
        return self.read(row)

    def __iter__(self) -> Iterator[int]:
        return iter(self.index.ids)

    def __len__(self) -> int:
        return len(self.index)

    def values(self) -> Iterator:  # every row in order, without looking each id up
        return map(self.read, range(len(self.index)))

    def items(self) -> Iterator[tuple[int, object]]:
        return zip(self.index.ids, self.values(), strict=True)


class _IdsByName(Mapping[str, tuple[int, ...]]):
    def __init__(self, index: SearchIndex):
        self.index = index

    def __getitem__(self, name: str) -> tuple[int, ...]:
        position = self.index.names.position(name) if isinstance(name, str) else None
        if position is None:
            raise KeyError(name)
        ids = self.index.ids
        return tuple(ids[row] for row in self.index.rows_named(position))

    def __contains__(self, name: object) -> bool:
        return name in self.index.names

    def __iter__(self) -> Iterator[str]:
        return iter(self.index.names)

    def __len__(self) -> int:
        return len(self.index.names)


def _folded(name: str, known: tuple[str, str] | None) -> str:
    return known[1] if known is not None and known[0] == name else normalize(name)


def build_index(
    version: int,
    cities: list[CityRecord],
    names: list[tuple[int, str]],
    pairs: list[tuple[int, int]],
) -> SearchIndex:
    return SearchIndex(version, cities, names, pairs)


def load_index(session: Session) -> SearchIndex:
    """One streamed query a table, plain rows (no ORM objects)."""
    started = time.perf_counter()
    load_region_tables()
    version = current_version(session)
    # Made before the rows are read, so that what stays for the index's life is not
    # scattered among the rows' objects (the heap they share could not go back).
    live = City.merged_into.is_(None)  # a merged record is found as its survivor
    places = Places(
        set(_plain_rows(session, select(City.country_code, City.region).where(live).distinct()))
    )
    columns = (
        City.id,
        City.name,
        City.country_code,
        City.region,
        City.latitude,
        City.longitude,
        City.population,
    )
    cities = _plain_rows(session, select(*columns).where(live).order_by(City.id))
    live_ids = select(City.id).where(live)
    names = _plain_rows(
        session, select(CityName.city_id, CityName.folded).where(CityName.city_id.in_(live_ids))
    )
    pairs = _plain_rows(session, select(Partnership.city_a_id, Partnership.city_b_id))
    # Each city's own name is folded already, beside its other names.
    own = _plain_rows(
        session,
        select(CityName.city_id, CityName.name, CityName.folded).where(
            CityName.kind == "name", CityName.city_id.in_(live_ids)
        ),
    )
    folded_own = {city_id: (name, folded) for city_id, name, folded in own}
    del own
    index = SearchIndex(version, cities, names, pairs, folded_own, places)
    del cities, names, pairs, folded_own
    _return_freed_memory()
    log.info(
        "search_index_loaded",
        version=version,
        cities=len(index),
        names=len(index.names),
        seconds=round(time.perf_counter() - started, 2),
    )
    return index


def _plain_rows(session: Session, statement) -> list[tuple]:
    """The rows as the database's driver gives them: making SQLAlchemy's Row objects of a
    million rows took longer than the query (the columns read here need no conversion)."""
    result = session.connection().execute(statement)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def _return_freed_memory() -> None:
    """The build's rows are freed, but glibc keeps the heap they took (about 100 MB for
    cities500) for reuse; a worker holds its index for hours, so the heap goes back now."""
    # Not glibc (no malloc_trim): nothing to hand back this way.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)


def _warmed(index: SearchIndex) -> SearchIndex:
    """The index, its parts made on first use being made in the background meanwhile, so no
    caller waits for them."""
    threading.Thread(
        target=lambda: index.big_city_typos, name="search-index-warm", daemon=True
    ).start()
    return index


class ReloadPacing:
    """When the watcher rebuilds: once the version has held still for ``settle`` seconds (a
    staff edit: a few seconds later), or once the index has been behind for ``max_behind``
    seconds while changes keep coming (an import commits every thousand rows, every second or
    two; a rebuild after each would keep a core busy for the whole import in every worker)."""

    def __init__(self, settle: float = 3.0, max_behind: float = 30.0):
        self.settle = settle
        self.settle, self.max_behind = settle, max_behind
        self._behind_since: float | None = None
        self._seen: tuple[int, float] | None = None  # the newest version, and when it came

    def due(self, index_version: int, version: int, now: float) -> bool:
        if version == index_version:
            self._behind_since = self._seen = None
            return False
        if self._behind_since is None:
            self._behind_since = now
        if self._seen is None or self._seen[0] != version:
            self._seen = (version, now)
        if now - self._seen[1] >= self.settle or now - self._behind_since >= self.max_behind:
            self._behind_since = self._seen = None
            return True
        return False


class IndexHolder:
    """The worker's current index. A thread of the worker process asks the database for the
    directory's version every ``check_every`` seconds; when it moved, a fresh index is built
    (paced by ``ReloadPacing``) and swapped in while the stale one keeps answering (``get``:
    a visitor's search may be a few seconds behind). ``current`` is for answers that are kept
    (a story's cities): it checks the version itself and catches up first, so a city
    committed before the question is in the answer."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        check_every: float = 1.0,
        on_reload: Callable[[SearchIndex], None] | None = None,
        settle: float = 3.0,
        max_behind: float = 30.0,
    ):
        self.sessions = sessions
        self.check_every = check_every
        self.settle, self.max_behind = settle, max_behind
        # Called after a fresh index replaced a stale one (answers cached elsewhere from the
        # stale one are stale too).
        self.on_reload = on_reload
        self._index: SearchIndex | None = None
        self._lock = threading.Lock()
        # One build at a time: the watcher and ``current`` would otherwise both build.
        self._reload_lock = threading.Lock()
        self._watcher_pid: int | None = None

    def get(self) -> SearchIndex:
        if self._watcher_pid != os.getpid():
            self._start_watcher()
        index = self._index
        if index is None:
            with self._lock:
                if self._index is None:
                    with self.sessions() as session:
                        self._index = _warmed(load_index(session))
                return self._index
        return index

    def current(self) -> SearchIndex:
        """The index at the directory's version now, built first if this one is behind."""
        index = self.get()
        with self.sessions() as session:
            version = current_version(session)
        return index if index.version >= version else self._catch_up(version)

    def _catch_up(self, version: int) -> SearchIndex:
        with self._reload_lock:
            index = self._index
            if index is not None and index.version >= version:
                return index  # built meanwhile by the other caller
            with self.sessions() as session:
                fresh = _warmed(load_index(session))
            self._index = fresh
        if self.on_reload is not None:
            self.on_reload(fresh)
        return fresh

    def _start_watcher(self) -> None:
        with self._lock:
            if self._watcher_pid == os.getpid():
                return
            self._watcher_pid = os.getpid()
            threading.Thread(target=self._watch, name="search-index", daemon=True).start()

    def _watch(self) -> None:
        failing = False
        pacing = ReloadPacing(self.settle, self.max_behind)
        while True:
            time.sleep(self.check_every)
            try:
                index = self._index
                with self.sessions() as session:
                    version = current_version(session)
                if failing:
                    log.info("search_index_refresh_recovered")
                    failing = False
                if index is not None and pacing.due(index.version, version, time.monotonic()):
                    self._catch_up(version)
            except Exception:
                # The database may be down for a while: keep answering from the index we have,
                # and say so once, not every second.
                if not failing:
                    log.exception("search_index_refresh_failed")
                failing = True
