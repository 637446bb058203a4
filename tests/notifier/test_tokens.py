"""Tokens: what a holder can learn from one, and what each key can sign."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from itsdangerous import URLSafeTimedSerializer

from services.notifier.tokens import Tokens, purpose_key, unsubscribe_checker
from shared.errors import InvalidInput
from tests.notifier.conftest import KEY

ADA = "ada@example.org"


def payload_of(token: str) -> list:
    """What anyone holding the token reads: its first part is base64 JSON, not encrypted."""
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_a_token_carries_no_hash_of_the_address_that_a_holder_could_check_guesses_against():
    subscriber_id, mark = payload_of(Tokens(KEY).make("unsubscribe", 7, ADA))
    assert subscriber_id == 7
    unkeyed = {
        hashlib.new(name, ADA.encode()).hexdigest()[: len(mark)]
        for name in ("sha256", "sha1", "md5", "sha512")
    }
    assert mark not in unkeyed
    # Keyed: the same address under another key has another fingerprint.
    assert payload_of(Tokens("another-key").make("unsubscribe", 7, ADA))[1] != mark


def test_the_mailbox_key_checks_unsubscribe_tokens_and_can_sign_nothing_else():
    tokens = Tokens(KEY)
    mailbox_key = purpose_key(KEY, "unsubscribe")
    checker = unsubscribe_checker(mailbox_key)
    assert checker.read("unsubscribe", tokens.make("unsubscribe", 7, ADA))[0] == 7
    for purpose in ("preferences", "confirm"):
        # Whoever holds the mailbox's key cannot make a link of another kind...
        forged = URLSafeTimedSerializer(mailbox_key, salt=f"sistercities.{purpose}").dumps(
            [7, tokens.fingerprint(ADA)]
        )
        with pytest.raises(InvalidInput):
            tokens.read(purpose, forged)
        # ... nor read one.
        with pytest.raises((InvalidInput, KeyError)):
            checker.read(purpose, tokens.make(purpose, 7, ADA))


def legacy_token(key: str, purpose: str, subscriber_id: int, email: str) -> str:
    """A link as mail sent before per-purpose keys carried it."""
    unkeyed = hashlib.sha256(email.encode()).hexdigest()[:16]
    return URLSafeTimedSerializer(key, salt=f"sistercities.{purpose}").dumps(
        [subscriber_id, unkeyed]
    )


@pytest.mark.parametrize("purpose", ["unsubscribe", "preferences"])
def test_unsubscribe_and_preferences_links_in_older_mail_keep_working(purpose):
    tokens = Tokens(KEY, legacy_key=KEY)
    link = tokens.read(purpose, legacy_token(KEY, purpose, 7, ADA))
    assert link.subscriber_id == 7
    assert tokens.same_address(link.mark, ADA)
    assert not tokens.same_address(link.mark, "eve@example.org")
    # Never with another key, and never once the legacy key is not given.
    with pytest.raises(InvalidInput):
        tokens.read(purpose, legacy_token("another-key", purpose, 7, ADA))
    with pytest.raises(InvalidInput):
        Tokens(KEY).read(purpose, legacy_token(KEY, purpose, 7, ADA))


def test_an_older_confirmation_link_confirms_nothing():
    with pytest.raises(InvalidInput):
        Tokens(KEY, legacy_key=KEY).read("confirm", legacy_token(KEY, "confirm", 7, ADA))


def test_a_new_mark_is_never_taken_for_a_legacy_one():
    tokens = Tokens(KEY, legacy_key=KEY)
    link = tokens.read("unsubscribe", tokens.make("unsubscribe", 7, ADA))
    assert tokens.same_address(link.mark, ADA) and not link.mark.startswith("legacy:")
