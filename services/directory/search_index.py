"""City Search's index: every name of every place, loaded from the directory's database and
reloaded when the directory's version moves (``IndexHolder``). ``search`` parses and ranks.

Columnar, because a row of Python objects a place and a dictionary entry a name cost about
3 KB a place (780 MB for cities500) and most of a 26 s load:
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
import sys
import threading
import time
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.directory.geography import country_name
from services.directory.index_version import current_version
from services.directory.models import City, CityName, Partnership
from services.directory.names import normalize
from services.directory.regions import RegionKey, region_aliases
from services.directory.typos import DeletionIndex, sorted_distinct
from shared.logs import get_logger

log = get_logger(__name__)

# A prefix that begins more names than this is too wide to scan per keystroke: its best
# cities are ranked once, on first use.
WIDE_PREFIX_NAMES = 256
WIDE_PREFIX_MAX_CHARS = 8
WIDE_PREFIX_KEEP = 100
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

    def as_result(self, sister_count: int) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "country_code": self.country_code,
            "country": country_name(self.country_code),
            "region": self.region,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "population": self.population,
            "sister_count": sister_count,
        }


class StringTable(Sequence[str]):
    """Strings in one UTF-8 bytes object with their offsets: about 1 byte a character and 8 an
    entry, where a list of str costs about 57 bytes an entry."""

    def __init__(self, strings: Sequence[str]):
        encoded = [text.encode() for text in strings]
        self._blob = b"".join(encoded)
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(item) for item in encoded], out=offsets[1:])
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
        self._sample = [self.encoded(i) for i in range(0, len(self), self.SAMPLE_EVERY)]

    def _bisect(self, key: bytes, start: int = 0) -> int:
        step = self.SAMPLE_EVERY
        sampled = bisect.bisect_left(self._sample, key)
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
        cities: list[CityRecord],
        names: list[tuple[int, str]],
        pairs: list[tuple[int, int]],
        folded_own: dict[int, tuple[str, str]] | None = None,
    ):
        """``folded_own``: city id -> (its own name, folded) as the directory holds them, so
        that only names changed since are folded again."""
        self.version = version
        cities = sorted(cities, key=lambda city: city.id)
        count = len(cities)
        self.ids = array("q", (city.id for city in cities))
        self._row_of = {city.id: row for row, city in enumerate(cities)}
        self.city_names = StringTable([city.name for city in cities])
        self.country = [sys.intern(city.country_code) for city in cities]
        self.region = [sys.intern(city.region) if city.region else None for city in cities]
        self.latitude = array("d", (city.latitude for city in cities))
        self.longitude = array("d", (city.longitude for city in cities))
        self.population = array("q", (city.population for city in cities))

        sisters: dict[int, set[int]] = defaultdict(set)
        for a, b in pairs:
            sisters[a].add(b)
            sisters[b].add(a)
        self.sisters = dict(sisters)
        self.sister_counts = array("i", bytes(4 * count))
        for city_id, partners in self.sisters.items():
            row = self._row_of.get(city_id)
            if row is not None:
                self.sister_counts[row] = len(partners)

        folded_own = folded_own or {}
        own = [_folded(city.name, folded_own.get(city.id)) for city in cities]
        known = [(self._row_of.get(city_id), folded) for city_id, folded in names]
        known = [(row, folded) for row, folded in known if row is not None]
        sorted_names = sorted({*own, *(folded for _, folded in known)})
        position = {name: at for at, name in enumerate(sorted_names)}
        self.names = NameTable(sorted_names)
        own_position = np.fromiter((position[name] for name in own), np.int64, count)
        self.own_position = array("q", own_position.tobytes())
        name_of = np.fromiter((position[folded] for _, folded in known), np.int64, len(known))
        row_of = np.fromiter((row for row, _ in known), np.int64, len(known))
        del position
        pairs_key = sorted_distinct(
            np.concatenate([own_position << 32 | np.arange(count), name_of << 32 | row_of])
        )
        self._name_rows = (pairs_key & 0xFFFFFFFF).astype(np.int32)
        starts = np.searchsorted(pairs_key >> 32, np.arange(len(sorted_names) + 1))
        self._name_starts = starts
        self.name_rows = array("i", self._name_rows.tobytes())
        self.name_starts = array("q", starts.astype(np.int64).tobytes())

        # Cities ranked by partnerships, then people: the order a wide prefix keeps.
        order = np.lexsort(
            (
                np.arange(count),
                -np.asarray(self.population, dtype=np.int64),
                -np.asarray(self.sister_counts, dtype=np.int64),
            )
        )
        self._rank = np.empty(count, dtype=np.int64)
        self._rank[order] = np.arange(count)
        self._own_position = own_position
        self._wide: dict[str, tuple[int, ...] | None] = {}

        regions = {(c, r) for c, r in zip(self.country, self.region, strict=True) if r}
        self.region_names = frozenset(normalize(region) for _, region in regions)
        self.region_aliases: dict[str, frozenset[RegionKey]] = region_aliases(regions)
        rows_in: dict[str | RegionKey, list[int]] = defaultdict(list)
        for row, (country, region) in enumerate(zip(self.country, self.region, strict=True)):
            rows_in[country].append(row)
            if region:
                rows_in[(country, region)].append(row)
        # country code or (country code, region) -> the rows of the cities there
        self.rows_in = {key: array("i", rows) for key, rows in rows_in.items()}
        self.typos = DeletionIndex(sorted_names, filed_as=self.names)

        self.cities: Mapping[int, CityRecord] = _ByCityId(self, self.record)
        self.ids_by_name: Mapping[str, tuple[int, ...]] = _IdsByName(self)
        self.own_name: Mapping[int, str] = _ByCityId(
            self, lambda row: self.names[self.own_position[row]]
        )

    def __len__(self) -> int:
        return len(self.ids)

    def row(self, city_id: int) -> int | None:
        return self._row_of.get(city_id)

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

    def rows_named(self, position: int) -> array:
        return self.name_rows[self.name_starts[position] : self.name_starts[position + 1]]

    def sister_count(self, city_id: int) -> int:
        return len(self.sisters.get(city_id, ()))

    def wide_prefix(self, prefix: str) -> tuple[int, ...] | None:
        """The best rows for a prefix that begins too many names to scan, else None."""
        if prefix in self._wide:
            return self._wide[prefix]
        ranked = None
        if len(prefix) <= WIDE_PREFIX_MAX_CHARS:
            start, end = self.names.span(prefix)
            if end - start > WIDE_PREFIX_NAMES:
                rows = np.unique(self._name_rows[self._name_starts[start] : self._name_starts[end]])
                own = self._own_position[rows]
                elsewhere = (own < start) | (own >= end)
                keys = elsewhere.astype(np.int64) * len(self) + self._rank[rows]
                ranked = tuple(rows[np.argsort(keys)[:WIDE_PREFIX_KEEP]].tolist())
        # Every process asks for few prefixes, and the same ones: worth keeping all.
        self._wide[prefix] = ranked
        return ranked


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
    version = current_version(session)
    columns = (
        City.id,
        City.name,
        City.country_code,
        City.region,
        City.latitude,
        City.longitude,
        City.population,
    )
    cities = [CityRecord(*row) for row in _plain_rows(session, select(*columns).order_by(City.id))]
    names = _plain_rows(session, select(CityName.city_id, CityName.folded))
    pairs = _plain_rows(session, select(Partnership.city_a_id, Partnership.city_b_id))
    # Each city's own name is folded already, beside its other names.
    own = _plain_rows(
        session,
        select(CityName.city_id, CityName.name, CityName.folded).where(CityName.kind == "name"),
    )
    folded_own = {city_id: (name, folded) for city_id, name, folded in own}
    del own
    index = SearchIndex(version, cities, names, pairs, folded_own)
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


class IndexHolder:
    """The worker's current index. A thread of the worker process asks the database for the
    directory's version every ``check_every`` seconds; when it moved, a fresh index is built
    and swapped in while the stale one keeps answering."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        check_every: float = 1.0,
        on_reload: Callable[[SearchIndex], None] | None = None,
    ):
        self.sessions = sessions
        self.check_every = check_every
        # Called after a fresh index replaced a stale one (answers cached elsewhere from the
        # stale one are stale too).
        self.on_reload = on_reload
        self._index: SearchIndex | None = None
        self._lock = threading.Lock()
        self._watcher_pid: int | None = None

    def get(self) -> SearchIndex:
        if self._watcher_pid != os.getpid():
            self._start_watcher()
        index = self._index
        if index is None:
            with self._lock:
                if self._index is None:
                    with self.sessions() as session:
                        self._index = load_index(session)
                return self._index
        return index

    def _start_watcher(self) -> None:
        with self._lock:
            if self._watcher_pid == os.getpid():
                return
            self._watcher_pid = os.getpid()
            threading.Thread(target=self._watch, name="search-index", daemon=True).start()

    def _watch(self) -> None:
        failing = False
        while True:
            time.sleep(self.check_every)
            try:
                index = self._index
                with self.sessions() as session:
                    version = current_version(session)
                if failing:
                    log.info("search_index_refresh_recovered")
                    failing = False
                if index is None or version == index.version:
                    continue
                with self.sessions() as session:
                    self._index = load_index(session)
                if self.on_reload is not None:
                    self.on_reload(self._index)
            except Exception:
                # The database may be down for a while: keep answering from the index we have,
                # and say so once, not every second.
                if not failing:
                    log.exception("search_index_refresh_failed")
                failing = True
