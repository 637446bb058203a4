"""The directory's own settings: the organisation's home country City Search favours."""

import pytest

from services.directory.config import load_settings
from shared.settings import ConfigError


def test_the_home_country_is_the_united_states_unless_set(tmp_path):
    assert load_settings({"DATA_DIR": str(tmp_path)}).home_country == "US"
    settings = load_settings({"DATA_DIR": str(tmp_path), "DIRECTORY_HOME_COUNTRY": "de"})
    assert settings.home_country == "DE"
    settings = load_settings({"DATA_DIR": str(tmp_path), "DIRECTORY_HOME_COUNTRY": "none"})
    assert settings.home_country is None


def test_a_home_country_that_is_no_country_code_stops_the_process(tmp_path):
    with pytest.raises(ConfigError, match="DIRECTORY_HOME_COUNTRY='XX'"):
        load_settings({"DATA_DIR": str(tmp_path), "DIRECTORY_HOME_COUNTRY": "XX"})
