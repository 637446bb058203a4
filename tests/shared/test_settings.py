"""Settings come from the environment once, with every problem named in one message."""

import pytest

from services.gateway.config import GatewaySettings
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
