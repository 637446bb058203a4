"""Names within reach of a typo, by symmetric deletion (as SymSpell does, one deletion deep):
a name is filed under itself and each form with one letter dropped, and a query looks under
the same forms of itself, so a dropped, added, changed or swapped letter still meets.

Filed compactly: forms grouped in buckets by their hash's leading bits, each form one 32-bit
number (its name's number and a few more bits of its hash), and where each bucket starts (so
a look-up reads a few numbers, not a binary search that makes a Python int of every number it
compares). A dictionary of strings to tuples cost about 200 bytes a form; this costs about 4,
and the index files ten million forms once every alternate name of every place is in.

The hash is a polynomial one over the code points, so the hash of every form with one letter
dropped follows from the prefix hashes of the name in a few array operations: numpy hashes
all forms of all names of one length at once, where hashing each form as a Python string took
most of the index's load. Two forms may share a hash: the caller measures the true distance
of every name it gets back anyway.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

NAME_BITS = 23
HASH_BITS = 63 - NAME_BITS
_NAME_MASK = (1 << NAME_BITS) - 1
_HASH_MASK = (1 << HASH_BITS) - 1
CHECK_BITS = 32 - NAME_BITS
_CHECK_MASK = (1 << CHECK_BITS) - 1
_WORD = (1 << 64) - 1
_BASE = 0x100000001B3  # odd, and wider than any code point
_MIX = 0x9E3779B97F4A7C15


def deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _form_hashes(word: str) -> set[int]:
    """The hashes of the word and of each form with one letter dropped, as ``_keys`` makes
    them (the same arithmetic on Python ints, wrapped to 64 bits)."""
    prefixes = [0]
    for char in word:
        prefixes.append((prefixes[-1] * _BASE + ord(char)) & _WORD)
    full = prefixes[-1]
    powers = [1]
    for _ in word:
        powers.append((powers[-1] * _BASE) & _WORD)
    length = len(word)
    hashes = {_mix(full)}
    for i in range(length):
        power = powers[length - 1 - i]
        hashes.add(_mix(prefixes[i] * power + full - prefixes[i + 1] * power))
    return hashes


def _mix(value: int) -> int:
    value &= _WORD
    return (((value ^ (value >> 29)) * _MIX) & _WORD) >> (64 - HASH_BITS)


class DeletionIndex:
    def __init__(self, names: Iterable[str] = (), filed_as: Sequence[str] | None = None):
        """``filed_as``: the names, sorted and distinct, as the caller keeps them (a name's
        number is its position there); ``names`` are then the same, as a list to hash."""
        if filed_as is None:
            names = sorted(set(names))
            filed_as = tuple(names)
        self.names = filed_as
        if len(self.names) > _NAME_MASK:
            raise ValueError(f"more than {_NAME_MASK:,} names to file for typos")
        # numpy sorts and finds the buckets' starts at build time only: a look-up reads the
        # plain arrays below, which index faster than numpy's.
        keys = sorted_distinct(_keys(names))
        # About two to four forms a bucket.
        self.bucket_bits = max(1, len(keys).bit_length() - 2)
        self._shift = HASH_BITS - self.bucket_bits
        # Keys are sorted, so each bucket's forms are together: counting them gives where
        # each bucket starts, in one pass where a search for each start took four.
        counts = np.bincount(keys >> NAME_BITS + self._shift, minlength=2**self.bucket_bits)
        starts = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=starts[1:])
        # A bucket's forms share the hash's leading bits: each keeps, beside its name's
        # number, only CHECK_BITS more of its hash, in 32 bits where 64 held all of it. A
        # form that shares those too by chance only adds a name whose distance is measured.
        check = (keys >> NAME_BITS) & _CHECK_MASK
        packed = (check << NAME_BITS | keys & _NAME_MASK).astype(np.uint32)
        del keys, check
        self.keys = array("I", packed.tobytes())
        self.starts = array("I", starts.astype(np.uint32).tobytes())

    def __len__(self) -> int:
        return len(self.keys)

    def candidates(self, word: str) -> set[str]:
        """Names that share a form with the word: every name one edit away, and some two."""
        return {self.names[number] for number in self.candidate_numbers(word)}

    def candidate_numbers(self, word: str) -> set[int]:
        """The numbers of the names ``candidates`` gives."""
        found: set[int] = set()
        keys, starts, shift = self.keys, self.starts, self._shift
        for hashed in _form_hashes(word):
            bucket = hashed >> shift
            check = hashed & _CHECK_MASK
            for position in range(starts[bucket], starts[bucket + 1]):
                key = keys[position]
                if key >> NAME_BITS == check:
                    found.add(key & _NAME_MASK)
        return found


class TwoEditIndex:
    """A few names that a query two edits away must still reach ("Philadelfia"): each filed
    under every form with up to two letters dropped, and the query looked up under its own,
    so any two edits meet. Forms grow with the square of a name's length, so only names
    worth it are filed here (big cities' own names), beside the one-deep index of all.

    Hashed with Python's string hash: the index is built and read in one process."""

    def __init__(self, numbered: Iterable[tuple[int, str]]):
        keys = [
            (hash(form) & _HASH_MASK) << NAME_BITS | number
            for number, name in numbered
            for form in within_two_deletes(name)
        ]
        keys = sorted_distinct(np.asarray(keys, dtype=np.int64))
        self._hashes = keys >> NAME_BITS
        self._numbers = keys & _NAME_MASK

    def __len__(self) -> int:
        return len(self._hashes)

    def candidate_numbers(self, word: str) -> set[int]:
        wanted = np.fromiter(
            (hash(form) & _HASH_MASK for form in within_two_deletes(word)), dtype=np.int64
        )
        starts = np.searchsorted(self._hashes, wanted, "left")
        ends = np.searchsorted(self._hashes, wanted, "right")
        found: set[int] = set()
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            if start != end:
                found.update(self._numbers[start:end].tolist())
        return found


def within_two_deletes(word: str) -> set[str]:
    once = deletes(word)
    return {word, *once, *(form for shorter in once for form in deletes(shorter))}


def sorted_distinct(values: np.ndarray) -> np.ndarray:
    """``np.unique`` without its hashing pass, several times slower on millions of ints."""
    values = np.sort(values)
    if len(values) == 0:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def _keys(names: Sequence[str]) -> np.ndarray:
    """For each name, its forms' hashes beside its number, hashed a length at a time."""
    by_length: dict[int, list[int]] = defaultdict(list)
    for number, name in enumerate(names):
        by_length[len(name)].append(number)
    parts = [np.zeros(0, dtype=np.int64)]
    base = np.uint64(_BASE)
    for length, numbers in by_length.items():
        if length == 0:
            continue
        text = "".join(names[number] for number in numbers)
        chars = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).reshape(-1, length)
        chars = chars.astype(np.uint64)
        prefixes = np.zeros((len(numbers), length + 1), dtype=np.uint64)
        for i in range(length):
            prefixes[:, i + 1] = prefixes[:, i] * base + chars[:, i]
        powers = np.ones(length + 1, dtype=np.uint64)
        for i in range(length):
            powers[i + 1 : i + 2] = powers[i : i + 1] * base
        full = prefixes[:, length]
        forms = [full]
        for i in range(length):
            power = powers[length - 1 - i : length - i]
            forms.append(prefixes[:, i] * power + full - prefixes[:, i + 1] * power)
        hashed = _mix_array(np.stack(forms, axis=1))
        number_column = np.asarray(numbers, dtype=np.int64)[:, None]
        parts.append(((hashed.astype(np.int64) << NAME_BITS) | number_column).ravel())
    return np.concatenate(parts)


def _mix_array(values: np.ndarray) -> np.ndarray:
    mixed = (values ^ (values >> np.uint64(29))) * np.uint64(_MIX)
    return mixed >> np.uint64(64 - HASH_BITS)
