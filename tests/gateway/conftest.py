"""Fixtures of the gateway's tests against the real services."""

import pytest

from tests.conftest import add_test_cities, wait_for_search_index


@pytest.fixture
def three_cities(stack, clean_databases, services) -> list[int]:
    """Alphaville, Betaburg and Gammaton: in the directory, and known to its search index."""
    ids = add_test_cities(
        clean_databases["directory"],
        [("Alphaville", "FR", 48.8, 2.3, 120_000), ("Betaburg", "DE", 52.5, 13.4, 90_000),
         ("Gammaton", "US", 44.9, -93.2, 400_000)],
    )  # fmt: skip
    wait_for_search_index(services)
    return ids
