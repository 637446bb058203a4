"""Signed links for mail: confirm, unsubscribe, preferences.

A token names the subscriber and a fingerprint of the address it was made for, signed with
the key and salted with its purpose: it cannot be forged, changed to another subscriber, used
for another purpose, or used after the address behind the id changed.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from shared.errors import InvalidInput

CONFIRM_MAX_AGE = timedelta(days=7)
MAX_TOKEN_CHARS = 500
PURPOSES = ("confirm", "unsubscribe", "preferences")


class Tokens:
    def __init__(self, key: str):
        self._serializers = {
            purpose: URLSafeTimedSerializer(key, salt=f"sistercities.{purpose}")
            for purpose in PURPOSES
        }

    def make(self, purpose: str, subscriber_id: int, email: str) -> str:
        return self._serializers[purpose].dumps([subscriber_id, fingerprint(email)])

    def read(self, purpose: str, token: str) -> tuple[int, str]:
        """(subscriber id, address fingerprint); ``InvalidInput`` for anything else."""
        max_age = CONFIRM_MAX_AGE.total_seconds() if purpose == "confirm" else None
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
            raise InvalidInput("this link is not valid")
        try:
            subscriber_id, mark = self._serializers[purpose].loads(token, max_age=max_age)
        except SignatureExpired:
            raise InvalidInput("this link has expired; subscribe again for a new one") from None
        except (BadSignature, ValueError, TypeError):
            raise InvalidInput("this link is not valid") from None
        if not isinstance(subscriber_id, int) or not isinstance(mark, str):
            raise InvalidInput("this link is not valid")
        return subscriber_id, mark


def fingerprint(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()[:16]


def same_address(mark: str, email: str) -> bool:
    return hmac.compare_digest(mark, fingerprint(email))
