"""A story page shows only allowlisted HTML, whatever Redis holds: anyone who can write to
Redis (a forged cache entry, a forged reply) must not get markup past the sanitizer."""

import hashlib
import json
import random
import re

import pytest

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from shared.routing import GENERATION_KEY

pytestmark = pytest.mark.integration

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
HOSTILE_HTML = (
    '<p>Before</p><script>alert("cache")</script>'
    '<img src="https://example.org/a.png" onerror="alert(1)">'
    '<a href="javascript:alert(2)" onclick="alert(3)">link</a>'
    '<iframe src="https://evil.example/"></iframe><p style="color:red">After</p>'
)


def forge_cache_entry(redis_client, task: str, params: dict, answer: dict) -> None:
    """Written as the gateway's cache writes its entries (``cache.py``), under the current
    generation, so the gateway takes it for the blog's answer."""
    digest = hashlib.sha1(
        json.dumps(params, sort_keys=True).encode(), usedforsecurity=False
    ).hexdigest()
    generation = int(redis_client.get(GENERATION_KEY.format("blog")) or 0)
    redis_client.set(f"sistercities:cache:{task}:{digest}", f"{generation}\n{json.dumps(answer)}")


def test_a_story_forged_in_the_cache_is_shown_without_script_or_handlers(
    stack_env, stack, redis_client
):
    post_id = random.randrange(1_000_000_000, 2_000_000_000)  # no real story has it
    forge_cache_entry(
        redis_client,
        "blog.get_post",
        {"post_id": post_id},
        {
            "id": post_id, "title": "Forged", "excerpt": "", "url": "https://medium.com/p/x",
            "image": None, "author": None, "published_at": "2026-11-28T10:00:00+00:00",
            "reading_minutes": 1, "tags": [], "city_ids": [], "feed_id": None,
            "content_html": HOSTILE_HTML, "updated_at": None,
        },
    )  # fmt: skip
    app = create_app(GatewaySettings.from_env(stack_env))
    page = app.test_client().get(f"/blog/{post_id}", headers=BROWSER)
    assert page.status_code == 200
    content = re.search(r'<div class="content">(.*?)</div>', page.text, re.DOTALL).group(1)
    assert "Before" in content and "After" in content  # the forged entry was served
    for dangerous in ("<script", "alert(", "onerror", "onclick", "javascript:", "<iframe"):
        assert dangerous not in content.lower()
    assert "style=" not in content
    assert '<img src="https://example.org/a.png">' in content
    assert '<a rel="nofollow noopener">link</a>' in content
