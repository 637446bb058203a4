"""Settings come from the environment once, with every problem named in one message."""

import pytest

from services.gateway.config import GatewaySettings
from shared.redis_connection import parse_sentinel_url
from shared.settings import ConfigError, ServiceSettings


def test_defaults_give_a_runnable_development_process(tmp_path):
    settings = ServiceSettings.from_env("blog", {"DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path}/blog.db"
    assert settings.redis_url == f"unix://{tmp_path}/redis.sock"
    assert settings.service_timeout == 2.0
    assert settings.environment == "development"


def test_every_invalid_variable_is_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        ServiceSettings.from_env(
            "directory",
            {
                "REDIS_URL": "http://nope",
                "DIRECTORY_DATABASE_URL": "mysql://x/y",
                "SERVICE_TIMEOUT": "soon",
                "ENVIRONMENT": "staging",
            },
        )
    message = str(caught.value)
    for name in ("REDIS_URL", "DIRECTORY_DATABASE_URL", "SERVICE_TIMEOUT", "ENVIRONMENT"):
        assert name in message
    assert len(caught.value.problems) == 4


def test_production_requires_a_secret_key():
    with pytest.raises(ConfigError, match="SECRET_KEY must be set"):
        GatewaySettings.from_env({"ENVIRONMENT": "production"})
    settings = GatewaySettings.from_env({"ENVIRONMENT": "production", "SECRET_KEY": "s" * 40})
    assert settings.secret_key == "s" * 40
    assert settings.log_format == "json"


def test_a_short_admin_token_is_refused():
    with pytest.raises(ConfigError, match="ADMIN_TOKEN must be at least 16"):
        GatewaySettings.from_env({"ADMIN_TOKEN": "short"})


def test_settings_are_frozen():
    settings = GatewaySettings.from_env({})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


SENTINELS = "sentinel://10.0.0.1:26379;sentinel://10.0.0.2:26379;sentinel://10.0.0.3"


def test_redis_behind_sentinel_is_every_sentinel_and_the_masters_name():
    settings = ServiceSettings.from_env(
        "blog", {"REDIS_URL": SENTINELS, "REDIS_SENTINEL_MASTER": "sistercities"}
    )
    assert (settings.redis_url, settings.redis_sentinel_master) == (SENTINELS, "sistercities")
    assert ServiceSettings.from_env("blog", {}).redis_sentinel_master == "mymaster"
    assert parse_sentinel_url(SENTINELS).sentinels == (
        ("10.0.0.1", 26379),
        ("10.0.0.2", 26379),
        ("10.0.0.3", 26379),
    )
    with_password = "sentinel://:s%40cret@a:1/2;sentinel://:s%40cret@b:1/2"
    parsed = parse_sentinel_url(with_password)
    assert (parsed.password, parsed.db) == ("s@cret", 2)


@pytest.mark.parametrize(
    ("redis_url", "problem"),
    [
        ("redis://a:6379;redis://b:6379", "only a sentinel:// URL can"),
        ("sentinel://a:26379;redis://b:6379", "address 2 of a sentinel URL does not start"),
        ("sentinel://a:26379;sentinel://", "address 2 of the sentinel URL names no host"),
        ("sentinel://a:port", "address 1 of the sentinel URL has a bad port"),
        ("sentinel://a/zero", "the database must be a number"),
        ("sentinel://:pw@a/1;sentinel://b/1", "must carry the same password and database"),
    ],
)
def test_a_bad_sentinel_url_is_explained_without_its_password(redis_url, problem):
    with pytest.raises(ConfigError) as caught:
        ServiceSettings.from_env("blog", {"REDIS_URL": redis_url})
    assert problem in str(caught.value)
    assert "pw" not in str(caught.value)


def test_a_sentinel_master_name_must_be_one_sentinel_conf_can_hold():
    with pytest.raises(ConfigError, match="REDIS_SENTINEL_MASTER must be the master's name"):
        ServiceSettings.from_env("blog", {"REDIS_SENTINEL_MASTER": "my master"})
