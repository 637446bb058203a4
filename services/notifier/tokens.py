"""Signed links for mail: confirm, unsubscribe, preferences, follow (cities to add).

A token names the subscriber and a fingerprint of the address it was made for, signed with
its purpose's key: it cannot be forged, changed to another subscriber, used for another
purpose, or used after the address behind the id changed. The fingerprint is keyed too, so a
token's holder cannot check guesses of the address offline.

Every key is derived from the notifier's mail-token key (``shared.keys``): the unsubscribe
mailbox holds the unsubscribe key alone, which checks unsubscribe tokens and the signed ids of
return paths (``bounces.py``, whose key is derived from it), and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import timedelta
from typing import NamedTuple

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from services.notifier.bounces import BounceIds, bounce_key
from shared.errors import InvalidInput
from shared.keys import derive_key

CONFIRM_MAX_AGE = timedelta(days=7)
MAX_TOKEN_CHARS = 500
PURPOSES = ("confirm", "unsubscribe", "preferences", "follow")
# Links that ask for a change (confirm, add cities) stop working after a week; unsubscribe
# and preferences links last as long as the mail does.
EXPIRING = ("confirm", "follow")
# Links in mail sent before keys were derived per purpose were signed with SECRET_KEY itself
# and carry an unkeyed address hash. Unsubscribe and preferences links stay in mailboxes for
# years and must keep working; their address marks are told apart by this prefix.
LEGACY_PURPOSES = ("unsubscribe", "preferences")
LEGACY_MARK = "legacy:"


class Link(NamedTuple):
    """What a valid token says: whose link it is, for which address, and (a confirmation
    link) which confirmation mail it came in; (a follow link) the cities it adds."""

    subscriber_id: int
    mark: str
    round: int | None = None
    city_ids: list[int] | None = None


def purpose_key(mail_token_key: str, purpose: str) -> str:
    return derive_key(mail_token_key, f"mail-token.{purpose}")


class TokenReader:
    """Checks the signatures of tokens for the purposes it holds keys for."""

    def __init__(self, keys: Mapping[str, str]):
        self._serializers = {
            purpose: URLSafeTimedSerializer(key, salt=f"sistercities.{purpose}")
            for purpose, key in keys.items()
        }

    def read(self, purpose: str, token: str) -> Link:
        """The link a token stands for; ``InvalidInput`` for anything else."""
        return _load(self._serializers[purpose], purpose, token)


def _load(serializer: URLSafeTimedSerializer, purpose: str, token: str) -> Link:
    max_age = CONFIRM_MAX_AGE.total_seconds() if purpose in EXPIRING else None
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise InvalidInput("this link is not valid")
    try:
        link = Link(*serializer.loads(token, max_age=max_age))
    except SignatureExpired:
        raise InvalidInput("this link has expired; subscribe again for a new one") from None
    except (BadSignature, ValueError, TypeError):
        raise InvalidInput("this link is not valid") from None
    if not (
        isinstance(link.subscriber_id, int)
        and isinstance(link.mark, str)
        and isinstance(link.round, int | None)
        and (
            link.city_ids is None
            or (isinstance(link.city_ids, list) and all(type(c) is int for c in link.city_ids))
        )
    ):
        raise InvalidInput("this link is not valid")
    return link


class Tokens(TokenReader):
    """Makes and reads the tokens of every purpose: the notifier's worker. ``legacy_key``
    (SECRET_KEY itself) still reads the unsubscribe and preferences links of older mail."""

    def __init__(self, mail_token_key: str, legacy_key: str | None = None):
        super().__init__({purpose: purpose_key(mail_token_key, purpose) for purpose in PURPOSES})
        self.bounce_ids = BounceIds(bounce_key(purpose_key(mail_token_key, "unsubscribe")))
        self._address_key = derive_key(mail_token_key, "mail-token.address").encode()
        self._legacy = {
            purpose: URLSafeTimedSerializer(legacy_key, salt=f"sistercities.{purpose}")
            for purpose in (LEGACY_PURPOSES if legacy_key else ())
        }

    def read(self, purpose: str, token: str) -> Link:
        try:
            return super().read(purpose, token)
        except InvalidInput:
            if purpose not in self._legacy:
                raise
        link = _load(self._legacy[purpose], purpose, token)
        return link._replace(mark=LEGACY_MARK + link.mark)

    def make(
        self,
        purpose: str,
        subscriber_id: int,
        email: str,
        round: int | None = None,
        city_ids: list[int] | None = None,
    ) -> str:
        link = [subscriber_id, self.fingerprint(email)]
        if city_ids is not None:
            link += [round, city_ids]
        elif round is not None:
            link.append(round)
        return self._serializers[purpose].dumps(link)

    def fingerprint(self, email: str) -> str:
        return hmac.new(self._address_key, email.encode(), hashlib.sha256).hexdigest()[:16]

    def same_address(self, mark: str, email: str) -> bool:
        if mark.startswith(LEGACY_MARK):
            unkeyed = hashlib.sha256(email.encode()).hexdigest()[:16]
            return hmac.compare_digest(mark.removeprefix(LEGACY_MARK), unkeyed)
        return hmac.compare_digest(mark, self.fingerprint(email))


def unsubscribe_checker(unsubscribe_key: str) -> TokenReader:
    """What the mailbox holds: it can tell a good unsubscribe token, and do nothing else."""
    return TokenReader({"unsubscribe": unsubscribe_key})
