"""Names within reach of a typo, by symmetric deletion (as SymSpell does, one deletion deep):
a name is filed under itself and each form with one letter dropped, and a query looks under
the same forms of itself, so a dropped, added, changed or swapped letter still meets.

Filed compactly: one sorted array of 64-bit numbers, each a hash of a form beside the number
of its name, and where each run of equal leading hash bits starts (so a look-up reads a few
numbers, not a binary search that makes a Python int of every number it compares). A
dictionary of strings to tuples cost about 200 bytes a form; this costs about 10, and the index
files millions of forms once every alternate name of every place is in. Two forms may share a
hash: the caller measures the true distance of every name it gets back anyway.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from itertools import chain

import numpy as np

NAME_BITS = 22
HASH_BITS = 63 - NAME_BITS
_NAME_MASK = (1 << NAME_BITS) - 1
_HASH_MASK = (1 << HASH_BITS) - 1


def deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _forms(word: str) -> set[str]:
    return {word, *deletes(word)}


def _hash(form: str) -> int:
    # str hashes differ between processes (PYTHONHASHSEED), never within one: each process
    # builds its own index.
    return hash(form) & _HASH_MASK


class DeletionIndex:
    def __init__(self, names: Iterable[str] = ()):
        self.names = tuple(sorted(set(names)))
        if len(self.names) > _NAME_MASK:
            raise ValueError(f"more than {_NAME_MASK:,} names to file for typos")
        # numpy sorts and finds the buckets' starts at build time only: a look-up reads the
        # plain arrays below, which index faster than numpy's.
        keys = np.fromiter(chain.from_iterable(_keys(self.names)), dtype=np.int64)
        keys.sort()
        # About two to four forms a bucket.
        self.bucket_bits = max(1, len(keys).bit_length() - 2)
        self._shift = HASH_BITS - self.bucket_bits
        starts = np.searchsorted(
            keys >> NAME_BITS + self._shift, np.arange(2**self.bucket_bits + 1)
        )
        self.keys = array("q", keys.tobytes())
        self.starts = array("I", starts.astype(np.uint32).tobytes())

    def __len__(self) -> int:
        return len(self.keys)

    def candidates(self, word: str) -> set[str]:
        """Names that share a form with the word: every name one edit away, and some two."""
        found: set[str] = set()
        keys, starts, shift = self.keys, self.starts, self._shift
        for form in _forms(word):
            hashed = _hash(form)
            bucket = hashed >> shift
            for position in range(starts[bucket], starts[bucket + 1]):
                key = keys[position]
                if key >> NAME_BITS == hashed:
                    found.add(self.names[key & _NAME_MASK])
        return found


def _keys(names: tuple[str, ...]) -> Iterator[list[int]]:
    """For each name, its forms' hashes beside its number."""
    for number, name in enumerate(names):
        yield [_hash(form) << NAME_BITS | number for form in _forms(name)]
