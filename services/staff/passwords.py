"""Passwords, kept as argon2id hashes with OWASP's recommended parameters (19 MiB, two
passes, one lane): a check costs a worker thread about a tenth of a second, where
argon2-cffi's defaults (64 MiB, three passes, four lanes) took 0.3 s on an idle 2-core machine
and up to 1.8 s on a loaded one, past the gateway's wait for an answer. Hashes made with other
parameters are rehashed at the next good sign-in. A wrong address costs as much time as a
wrong password, so timing tells nobody which addresses have accounts."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from shared.errors import InvalidInput

MIN_CHARS = 12
MAX_CHARS = 1000


@functools.cache
def _hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def check_strength(password: str) -> str:
    if not MIN_CHARS <= len(password) <= MAX_CHARS:
        raise InvalidInput(f"a password is {MIN_CHARS} to {MAX_CHARS} characters")
    return password


def hash_password(password: str) -> str:
    return _hasher().hash(check_strength(password))


def warm_up() -> None:
    """Make the decoy before the first sign-in, which would otherwise pay for it."""
    _decoy()


@functools.cache
def _decoy() -> str:
    return _hasher().hash("a password nobody has, hashed once")


def verify(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` is the one hashed; with no hash (no account, or sign-in by link
    only) the same work is done against a decoy, and the answer is no."""
    if len(password) > MAX_CHARS:
        return False
    try:
        return _hasher().verify(password_hash or _decoy(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    return _hasher().check_needs_rehash(password_hash)
