"""The session's memory of a subscriber's link: kept for ``RECENT_SECONDS``, then dropped, and
anything else in its place taken for nothing."""

import time

from flask import session

from services.gateway.site import subscriber_link


def test_a_links_token_is_recent_for_half_an_hour_and_then_forgotten(gateway_app):
    with gateway_app.test_request_context():
        assert subscriber_link.recent_token() is None
        subscriber_link.remember({"preferences_token": "t0ken"})
        assert subscriber_link.recent_token() == "t0ken"
        session[subscriber_link.KEY] = ["t0ken", time.time() - subscriber_link.RECENT_SECONDS - 1]
        assert subscriber_link.recent_token() is None
        assert subscriber_link.KEY not in session


def test_a_mangled_memory_is_none_and_a_long_or_missing_token_is_not_kept(gateway_app):
    with gateway_app.test_request_context():
        for mangled in (["t0ken"], "t0ken", [1, 2], ["t0ken", "yesterday"], [None, time.time()]):
            session[subscriber_link.KEY] = mangled
            assert subscriber_link.recent_token() is None
            assert subscriber_link.KEY not in session
        subscriber_link.remember({"preferences_token": "x" * 301})
        subscriber_link.remember({})
        assert subscriber_link.KEY not in session
