"""The key that makes one story one post: Medium's global ids only for what came from Medium,
every other key within its feed."""

from functools import partial

import pytest

from services.blog.post_keys import is_medium_host, medium_post_id, post_key, source_name

GUID = "https://medium.com/p/d65805bccee"  # 11 hex digits: real, see the corpus notes
medium_key = partial(post_key, from_medium=True)
other_key = partial(post_key, from_medium=False)


def test_medium_posts_are_keyed_by_their_id_whatever_the_link():
    assert medium_post_id(GUID, None) == "d65805bccee"
    keys = {
        medium_key(1, GUID, "https://medium.com/@mauro/a-title-d65805bccee?source=rss-1", ""),
        medium_key(2, None, "https://mauro.medium.com/a-title-d65805bccee", ""),
        medium_key(3, None, "https://medium.com/vuetify/a-title-d65805bccee?source=rss----2", ""),
    }
    assert keys == {"medium:d65805bccee"}


def test_a_feed_off_medium_cannot_claim_a_medium_id():
    # The guid and link name a Medium story, but the feed's bytes came from elsewhere.
    forged = other_key(7, GUID, "https://medium.com/@mauro/a-title-d65805bccee", "")
    assert forged == f"7:guid:{GUID}"
    assert other_key(7, None, "https://mauro.medium.com/a-title-d65805bccee", "").startswith(
        "7:link:"
    )


@pytest.mark.parametrize(
    ("host", "custom", "medium"),
    [
        ("medium.com", (), True),
        ("MEDIUM.COM.", (), True),
        ("jinnabaalu.medium.com", (), True),
        ("blog.sistercities.org", ("blog.sistercities.org",), True),
        ("blog.sistercities.org", (), False),
        ("evilmedium.com", (), False),
        ("medium.com.evil.org", (), False),
        ("sistercities.org", ("blog.sistercities.org",), False),
        (None, (), False),
    ],
)
def test_medium_hosts_are_medium_its_subdomains_and_the_configured_domains(host, custom, medium):
    assert is_medium_host(host, frozenset(custom)) is medium


def test_other_keys_hold_within_their_feed():
    assert other_key(1, "1", None, "") != other_key(2, "1", None, "")
    assert other_key(1, None, "https://www.example.org/a?utm_source=x", "") == other_key(
        1, None, "http://example.org/a", ""
    )
    assert other_key(1, None, None, "same text") == other_key(1, None, None, "same text")
    assert len(other_key(1, "x" * 100_000, None, "")) < 400


def test_a_story_is_on_medium_only_when_medium_keyed_it():
    assert source_name("medium:d65805bccee", "https://blog.example.org/a-d65805bccee") == "Medium"
    assert source_name("7:guid:x", "https://medium.com/p/d65805bccee") == "medium.com"
    assert source_name("7:link:x", "https://www.news.example.org/a") == "news.example.org"
