"""SECRET_KEY and the keys derived from it: long enough in production, one per purpose, and
the mailbox never given SECRET_KEY."""

from __future__ import annotations

import pytest

from services.gateway.config import GatewaySettings
from services.notifier.config import load_mailbox_settings, load_settings
from shared.settings import ConfigError
from sistercities.cli import mailbox_environment

LONG_KEY = "a-long-random-string-for-this-test-of-keys"


def production(tmp_path, **more) -> dict[str, str]:
    return {"ENVIRONMENT": "production", "DATA_DIR": str(tmp_path), **more}


@pytest.mark.parametrize("load", [GatewaySettings.from_env, load_settings])
def test_production_refuses_a_short_secret_key_with_a_clear_message(tmp_path, load):
    with pytest.raises(ConfigError, match="SECRET_KEY must be at least 32 characters"):
        load(production(tmp_path, SECRET_KEY="short-but-not-empty"))
    assert load(production(tmp_path, SECRET_KEY=LONG_KEY)).secret_key == LONG_KEY


def test_sessions_and_mail_links_are_signed_with_different_keys_none_of_them_secret_key(
    tmp_path,
):
    gateway = GatewaySettings.from_env(production(tmp_path, SECRET_KEY=LONG_KEY))
    notifier = load_settings(production(tmp_path, SECRET_KEY=LONG_KEY))
    keys = {LONG_KEY, gateway.session_key, notifier.mail_token_key(), notifier.unsubscribe_key()}
    assert len(keys) == 4
    assert all(len(key) >= 32 for key in keys)


def test_the_mailbox_needs_its_own_key_in_production_and_never_holds_secret_key(tmp_path):
    with pytest.raises(ConfigError, match="UNSUBSCRIBE_KEY must be set"):
        load_mailbox_settings(production(tmp_path, SECRET_KEY=LONG_KEY))
    notifier = load_settings(production(tmp_path, SECRET_KEY=LONG_KEY))
    settings = load_mailbox_settings(
        production(tmp_path, SECRET_KEY=LONG_KEY, UNSUBSCRIBE_KEY=notifier.unsubscribe_key())
    )
    assert settings.checking_key() == notifier.unsubscribe_key()
    assert LONG_KEY not in repr(settings)


def test_sistercities_run_hands_the_mailbox_its_key_and_not_secret_key(tmp_path):
    env = production(
        tmp_path, SECRET_KEY=LONG_KEY, REDIS_URL="redis://:a-password@127.0.0.1:6379/0"
    )
    notifier = load_settings(env)
    mailbox_env = mailbox_environment(env, notifier)
    assert "SECRET_KEY" not in mailbox_env and LONG_KEY not in mailbox_env.values()
    assert load_mailbox_settings(mailbox_env).checking_key() == notifier.unsubscribe_key()
