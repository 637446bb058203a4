"""Feed addresses staff type and canonical links."""

import pytest

from services.blog.links import BadFeedUrl, canonical_link, feed_url


@pytest.mark.parametrize(
    ("typed", "fetched"),
    [
        ("https://medium.com/feed/sister-cities", "https://medium.com/feed/sister-cities"),
        ("medium.com/sister-cities", "https://medium.com/feed/sister-cities"),
        ("https://medium.com/@jinnabaalu/", "https://medium.com/feed/@jinnabaalu"),
        ("https://medium.com/tag/cryptocurrency", "https://medium.com/feed/tag/cryptocurrency"),
        ("https://jinnabaalu.medium.com", "https://jinnabaalu.medium.com/feed"),
        ("https://Example.org/blog/rss.xml", "https://example.org/blog/rss.xml"),
        ("http://example.org:8080/feed?format=atom", "http://example.org:8080/feed?format=atom"),
        ("http://127.0.0.1:8080/rss", "http://127.0.0.1:8080/rss"),
        ("http://[::1]/rss", "http://[::1]/rss"),
        ("https://bücher.example/feed", "https://bücher.example/feed"),
        ("https://my_blog.example.org/feed", "https://my_blog.example.org/feed"),
    ],
)
def test_feed_addresses_are_what_staff_mean(typed, fetched):
    assert feed_url(typed) == fetched


@pytest.mark.parametrize(
    "typed",
    ["ftp://example.org/feed", "javascript:alert(1)", "https://user:pw@example.org/feed",
     "https://" + "a" * 3000 + ".org", "<script>alert(1)</script>",
     "https://exa mple.org/feed", "https://example.org/feed\r\nX-Injected: 1",
     "\x1b[31mred\x1b[0m", "https://[example.org/feed", "https://-bad-.org/feed",
     "https://example..org/feed"],
)  # fmt: skip
def test_other_addresses_are_refused(typed):
    with pytest.raises(BadFeedUrl):
        feed_url(typed)


def test_canonical_links_lose_tracking_but_keep_meaningful_queries():
    assert (
        canonical_link("https://Jinnabaalu.medium.com/built-5a4777e371b2?source=rss-5c89------2")
        == "https://jinnabaalu.medium.com/built-5a4777e371b2"
    )
    assert (
        canonical_link("https://example.org/?p=123&utm_source=x&utm_medium=rss#comments")
        == "https://example.org/?p=123"
    )
    assert canonical_link("javascript:alert(1)") is None
