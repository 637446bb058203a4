"""Staff feature a story on the home page through the admin API and the story's workspace page,
with the real gateway and workers: the home page shows it first within seconds, one at a time,
and no more once it is unfeatured; the change is on the blog's audit log."""

import re

import pytest

from services.blog.posts import store_posts
from shared.db import make_session_factory, session_scope
from shared.events import utcnow
from tests.blog.test_city_links import a_post
from tests.integration.test_staff_end_to_end import (
    PASSWORD,
    add_member,
    csrf_of,
    sign_in_with_password,
)
from tests.stack import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def stories(stack, clean_databases) -> list[int]:
    made = []
    for key, title in (("one", "Kuopio hosts the choir"), ("two", "Lyon plants a garden")):
        with session_scope(make_session_factory(clean_databases["blog"])) as session:
            made += store_posts(session, None, [a_post(key, title, "<p>x</p>", key)], utcnow())
    return made


def featured_on_home(client) -> str | None:
    page = client.get("/").text
    section = re.search(r'<section class="featured".*?</section>', page, re.S)
    if section is None:
        return None
    return re.search(r'<h3><a href="/blog/\d+">([^<]+)</a>', section.group(0)).group(1)


def test_the_api_features_one_story_at_a_time_and_the_home_page_follows(
    client, admin_headers, stories
):
    first, second = stories
    assert featured_on_home(client) is None  # the home page is cached now
    body = {"featured": True}
    assert client.put(f"/api/v1/admin/posts/{first}/featured", json=body).status_code == 401
    assert (
        client.put("/api/v1/admin/posts/999999/featured", json=body, headers=admin_headers)
    ).status_code == 404
    bad = client.put(
        f"/api/v1/admin/posts/{first}/featured", json={"featured": "maybe"}, headers=admin_headers
    )
    assert bad.status_code == 400
    response = client.put(f"/api/v1/admin/posts/{first}/featured", json=body, headers=admin_headers)
    assert response.status_code == 200, response.json
    assert response.json["featured"] is True
    wait_for(
        lambda: featured_on_home(client) == "Kuopio hosts the choir",
        what="the home page to show the featured story",
    )
    client.put(f"/api/v1/admin/posts/{second}/featured", json=body, headers=admin_headers)
    wait_for(
        lambda: featured_on_home(client) == "Lyon plants a garden",
        what="the home page to show the story featured next",
    )
    listed = client.get("/staff/stories")  # not signed in: no list
    assert listed.status_code == 303
    client.put(
        f"/api/v1/admin/posts/{second}/featured", json={"featured": False}, headers=admin_headers
    )
    wait_for(lambda: featured_on_home(client) is None, what="the home page to feature none")
    hidden = client.put(
        f"/api/v1/admin/posts/{first}/hidden", json={"hidden": True}, headers=admin_headers
    )
    assert hidden.status_code == 200
    refused = client.put(f"/api/v1/admin/posts/{first}/featured", json=body, headers=admin_headers)
    assert refused.status_code == 409
    history = client.get(f"/api/v1/admin/audit?kind=story&id={second}", headers=admin_headers)
    assert [entry["action"] for entry in history.json["results"]] == [
        "story.unfeatured",
        "story.featured",
    ]


def test_an_editor_features_and_unfeatures_a_story_from_its_page(
    gateway_app, client, clean_databases, stories
):
    first, _second = stories
    add_member(clean_databases, "eve@example.org", "editor", "Eve Editor", PASSWORD)
    staff = sign_in_with_password(gateway_app, "eve@example.org")
    page = staff.get(f"/staff/stories/{first}")
    assert page.status_code == 200 and "Feature on the home page" in page.text
    assert staff.post(f"/staff/stories/{first}/featured", data={"featured": "1"}).status_code == 400
    done = staff.post(
        f"/staff/stories/{first}/featured", data={"featured": "1", "csrf_token": csrf_of(page)}
    )
    assert done.status_code == 303
    page = staff.get(done.headers["Location"])
    assert "Featured on the home page." in page.text and "Unfeature" in page.text
    assert "story.featured" in page.text and "Eve Editor" in page.text
    assert "featured on the home page" in staff.get("/staff/stories").text
    wait_for(lambda: featured_on_home(client) == "Kuopio hosts the choir", what="the home page")
    undone = staff.post(
        f"/staff/stories/{first}/featured", data={"featured": "0", "csrf_token": csrf_of(page)}
    )
    assert undone.status_code == 303
    assert "Feature on the home page" in staff.get(f"/staff/stories/{first}").text
    wait_for(lambda: featured_on_home(client) is None, what="the home page to feature none")
