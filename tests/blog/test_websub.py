"""WebSub's plain parts: which hub a feed names, and what a delivery's signature must be."""

import hashlib
import hmac

import pytest

from services.blog.parser import parse_feed
from services.blog.websub import Hub, hub_of, signature_matches

FEED = b"""<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">
<channel><title>T</title><link>https://medium.com/twinning</link>
<atom:link href="http://medium.superfeedr.com" rel="hub"/>
<atom:link href="https://medium.com/feed/twinning" rel="self" type="application/rss+xml"/>
<item><title>A</title><link>https://medium.com/twinning/a-0123456789ab</link></item>
</channel></rss>"""


def test_the_hub_and_topic_come_from_the_feed_or_its_link_header_first():
    parsed = parse_feed(FEED, "https://medium.com/feed/twinning")
    assert hub_of(parsed, {}, "https://x.example/") == Hub(
        "http://medium.superfeedr.com", "https://medium.com/feed/twinning"
    )
    headers = {"Link": '<https://hub.example/>; rel="hub", <https://a.example/f>; rel="self"'}
    assert hub_of(parsed, headers, "https://x.example/") == Hub(
        "https://hub.example/", "https://a.example/f"
    )
    plain = parse_feed(FEED.replace(b'rel="hub"', b'rel="other"'), "https://x.example/f")
    assert hub_of(plain, {}, "https://x.example/f") is None
    hostile = parse_feed(FEED.replace(b"http://medium.superfeedr.com", b"file:///etc/passwd"), "u")
    assert hub_of(hostile, {}, "https://x.example/f") is None


@pytest.mark.parametrize("method", ["sha1", "sha256", "sha384", "sha512"])
def test_each_method_the_spec_names_is_checked(method):
    body = b"<rss/>"
    mac = hmac.new(b"secret", body, getattr(hashlib, method)).hexdigest()
    assert signature_matches("secret", body, f"{method}={mac}")
    assert signature_matches("secret", body, f"{method.upper()}={mac.upper()}")
    assert not signature_matches("other", body, f"{method}={mac}")
    assert not signature_matches("secret", body + b" ", f"{method}={mac}")


@pytest.mark.parametrize("header", [None, "", "sha256", "sha256=", "md5=abc", "=abc", "x" * 300])
def test_a_missing_or_malformed_signature_never_matches(header):
    assert not signature_matches("secret", b"<rss/>", header)
