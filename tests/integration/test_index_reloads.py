"""The directory's search index reloading after a change, in each lane's worker: only the
interactive worker's reload makes the gateway's cached directory answers stale."""

import pytest

from shared.routing import GENERATION_KEY
from tests.conftest import add_test_cities
from tests.stack import wait_for

pytestmark = pytest.mark.integration


def test_only_the_interactive_workers_reload_makes_cached_answers_stale(
    stack, services, clean_databases, redis_client
):
    """The background worker's index links stories to places and answers nothing the gateway
    caches. When its reload moved the directory's generation too, a city page cached after
    the interactive reload went stale again seconds later, whenever the blog had just asked
    about places (the page cache's tests failed so)."""

    def generation() -> int:
        return int(redis_client.get(GENERATION_KEY.format("directory")) or 0)

    # The background worker holds an index from its first question about places on.
    services.call("directory.match_places_many", ["A choir from Minneapolis"])
    was = generation()
    add_test_cities(clean_databases["directory"], [("Zzyzx", "US", 35.14, -116.10, 10)])
    wait_for(lambda: generation() > was, timeout=60, what="the interactive worker's reload")
    # A question about places is answered from the directory as it is now: the background
    # worker has caught up with the change once it answers.
    found = services.call("directory.match_places_many", ["The Zzyzx road"])
    assert found, found
    assert generation() == was + 1
