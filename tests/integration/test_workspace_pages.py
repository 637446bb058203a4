"""The workspace's forms without a browser, against the real gateway and workers: a city
typed by name is taken when one city has it, offered as a choice when several do, and
refused when none does; a refusal by the service comes back on the form; every form needs
its CSRF token; lists are a page at a time; pages are for staff only."""

import re

import pytest

from tests.conftest import add_test_cities
from tests.integration.test_staff_end_to_end import (
    PASSWORD,
    add_member,
    csrf_of,
    sign_in_with_password,
)
from tests.site.conftest import site_world  # noqa: F401
from tests.stack import wait_for

pytestmark = pytest.mark.integration

PLACES = [
    ("Springfield", "US", 39.8, -89.64, 114_000),
    ("Springfield", "US", 42.1, -72.59, 155_000),
    ("Kuopio", "FI", 62.89, 27.68, 120_000),
    ("Joensuu", "FI", 62.6, 29.76, 77_000),
]


@pytest.fixture
def editor(gateway_app, stack, clean_databases, services):
    ids = add_test_cities(clean_databases["directory"], PLACES)

    def indexed() -> bool:
        found = services.call("directory.search_cities", "Joensuu")["results"]
        return bool(found) and found[0]["id"] == ids[3]

    wait_for(indexed, timeout=30, what="the directory to index the test cities")
    add_member(clean_databases, "eve@example.org", "editor", "Eve Editor", PASSWORD)
    return sign_in_with_password(gateway_app, "eve@example.org"), ids


def add(client, **fields):
    page = client.get("/staff/partnerships")
    form = {"city": "", "city_id": "", "sister": "", "sister_id": "", "status": "active"}
    return client.post("/staff/partnerships", data={**form, **fields, "csrf_token": csrf_of(page)})


def test_a_name_several_cities_have_is_offered_as_a_choice(editor):
    client, (springfield_il, springfield_ma, _kuopio, _joensuu) = editor
    asked = add(client, city="Springfield", sister="Kuopio")
    assert asked.status_code == 400 and "Several cities have that name" in asked.text
    offered = set(re.findall(r'name="city_id" value="(\d+)"', asked.text))
    assert offered == {str(springfield_il), str(springfield_ma)}
    # Kuopio was taken as typed; the choice made, the partnership is added.
    chosen = add(client, city="Springfield", city_id=str(springfield_ma), sister="Kuopio")
    assert chosen.status_code == 303
    listed = client.get("/staff/partnerships").text
    assert "Springfield" in listed and "Kuopio" in listed


def test_unknown_names_and_refusals_come_back_on_the_form(editor):
    client, _ids = editor
    unknown = add(client, city="Atlantis", sister="Kuopio")
    assert unknown.status_code == 400 and "No city is called that" in unknown.text
    assert add(client, city="Joensuu", sister="Kuopio").status_code == 303
    again = add(client, city="Kuopio", sister="Joensuu")
    assert again.status_code == 400 and "already partners" in again.text


def test_every_form_needs_its_csrf_token(editor):
    client, _ids = editor
    refused = client.post("/staff/partnerships", data={"city": "Joensuu", "sister": "Kuopio"})
    assert refused.status_code == 400 and "form expired" in refused.text


def test_lists_come_a_page_at_a_time(editor, services):
    client, (_il, springfield_ma, kuopio, joensuu) = editor
    for city, sister in ((springfield_ma, kuopio), (springfield_ma, joensuu), (kuopio, joensuu)):
        services.call("directory.create_partnership", city, sister)
    first = services.call("directory.list_partnerships", limit=2)
    assert len(first["results"]) == 2 and first["next_before_id"] is not None
    rest = services.call("directory.list_partnerships", before_id=first["next_before_id"], limit=2)
    assert len(rest["results"]) == 1 and rest["next_before_id"] is None
    ids = [row["id"] for row in first["results"] + rest["results"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 3
    assert rest["results"][0]["cities"][0]["name"] == "Springfield"
    page = client.get(f"/staff/partnerships?before={first['next_before_id']}")
    assert page.status_code == 200 and page.text.count('href="/staff/partnerships/') == 1


def test_the_workspace_is_for_staff_only(gateway_app, stack):
    client = gateway_app.test_client()
    for path in ("/staff/partnerships", "/staff/stories", "/staff/feeds", "/staff/audit"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["Location"].endswith(
            "/staff/sign-in"
        ), path


def test_an_admin_disables_a_member_whose_sessions_end_at_once(gateway_app, stack, clean_databases):
    add_member(clean_databases, "ada@example.org", "admin", "Ada Admin", PASSWORD)
    eve = add_member(clean_databases, "eve@example.org", "editor", "Eve Editor", PASSWORD)
    admin = sign_in_with_password(gateway_app, "ada@example.org")
    editor = sign_in_with_password(gateway_app, "eve@example.org")
    assert editor.get("/staff/stories").status_code == 200
    assert editor.get("/staff/members").status_code == 403

    page = admin.get("/staff/members")
    assert "Disable Eve Editor" in page.text and "Disable Ada Admin" not in page.text
    changed = admin.post(
        f"/staff/members/{eve}", data={"access": "disable", "csrf_token": csrf_of(page)}
    )
    assert changed.status_code == 303
    refused = editor.get("/staff/stories")
    assert refused.status_code == 303 and refused.headers["Location"].endswith("/staff/sign-in")
    history = admin.get("/staff/audit").text
    by_ada = r"Ada Admin &lt;ada@example.org&gt;</td>\s*<td>staff.disabled</td>\s*<td>staff "
    assert re.search(by_ada + f"{eve}</td>", history)


def test_a_story_hidden_and_shown_again_through_the_api_is_on_record(
    client,
    site_world,  # noqa: F811
    admin_headers,
):
    story = site_world.stories["najaf"]
    assert client.get(f"/api/v1/posts/{story}").status_code == 200
    hidden = client.put(
        f"/api/v1/admin/posts/{story}/hidden", json={"hidden": True}, headers=admin_headers
    )
    assert hidden.status_code == 200 and hidden.json["hidden"] is True
    # Each gateway process learns of the change from the cache generation it reads in the
    # background: the public answers follow within moments.
    wait_for(lambda: client.get(f"/api/v1/posts/{story}").status_code == 404, what="a 404")
    assert client.get(f"/blog/{story}").status_code == 404
    shown = client.put(
        f"/api/v1/admin/posts/{story}/hidden", json={"hidden": False}, headers=admin_headers
    )
    assert shown.status_code == 200 and shown.json["hidden"] is False
    wait_for(lambda: client.get(f"/api/v1/posts/{story}").status_code == 200, what="a 200")
    history = client.get(
        "/api/v1/admin/audit", query_string={"kind": "story", "id": story}, headers=admin_headers
    ).json["results"]
    assert [(entry["action"], entry["actor"]["id"]) for entry in history] == [
        ("story.shown", "token:admin"),
        ("story.hidden", "token:admin"),
    ]


def test_a_feed_is_paused_and_resumed_from_its_page(editor, services):
    client, _ids = editor
    feed = services.call("blog.add_feed", "http://127.0.0.1:9/paused.xml")

    def toggle(paused: str):
        page = client.get("/staff/feeds")
        form = {"paused": paused, "csrf_token": csrf_of(page)}
        return client.post(f"/staff/feeds/{feed['id']}/paused", data=form)

    assert toggle("true").status_code == 303
    page = client.get("/staff/feeds").text
    assert "paused</strong> since" in page and "Poll now" not in page and ">Resume<" in page
    assert toggle("false").status_code == 303
    page = client.get("/staff/feeds").text
    assert "paused</strong>" not in page and "Poll now" in page and ">Pause<" in page
    history = services.call("blog.list_feeds_page", limit=5)["results"][0]
    assert history["paused_at"] is None


def test_an_admin_ends_one_session_of_a_member_and_keeps_the_others(
    gateway_app, stack, clean_databases
):
    add_member(clean_databases, "ada@example.org", "admin", "Ada Admin", PASSWORD)
    eve = add_member(clean_databases, "eve@example.org", "editor", "Eve Editor", PASSWORD)
    admin = sign_in_with_password(gateway_app, "ada@example.org")
    laptop = sign_in_with_password(gateway_app, "eve@example.org")
    phone = sign_in_with_password(gateway_app, "eve@example.org")
    assert laptop.get(f"/staff/members/{eve}/sessions").status_code == 403

    assert f"/staff/members/{eve}/sessions" in admin.get("/staff/members").text
    page = admin.get(f"/staff/members/{eve}/sessions")
    assert page.status_code == 200 and "Sessions of Eve Editor" in page.text
    ended = re.findall(rf'action="/staff/members/{eve}/sessions/(\d+)/end"', page.text)
    assert len(ended) == 2
    # Either may be listed first: ending one stops exactly one browser.
    done = admin.post(
        f"/staff/members/{eve}/sessions/{ended[0]}/end", data={"csrf_token": csrf_of(page)}
    )
    assert done.status_code == 303
    still = [client.get("/staff/stories").status_code for client in (laptop, phone)]
    assert sorted(still) == [200, 303]
    left = admin.get(f"/staff/members/{eve}/sessions").text
    assert re.findall(rf'action="/staff/members/{eve}/sessions/(\d+)/end"', left) == [ended[1]]

    # A session of someone else's, named under Eve's, is refused.
    mine = re.search(r'action="/staff/sessions/(\d+)/end"', admin.get("/staff").text).group(1)
    refused = admin.post(
        f"/staff/members/{eve}/sessions/{mine}/end", data={"csrf_token": csrf_of(page)}
    )
    assert refused.status_code == 403
    assert admin.get("/staff").status_code == 200
    assert admin.get("/staff/members/999999/sessions").status_code == 404


def test_the_feed_list_goes_out_and_comes_back_as_opml_on_the_feeds_page(editor):
    from io import BytesIO

    client, _ids = editor
    page = client.get("/staff/feeds")
    assert 'action="/staff/feeds/opml"' in page.text and 'href="/staff/feeds/opml"' in page.text
    opml = (
        '<?xml version="1.0"?><opml version="2.0"><head/><body>'
        '<outline text="One" xmlUrl="http://127.0.0.1:9/one.xml"/>'
        '<outline text="Bad" xmlUrl="file:///etc/passwd"/>'
        "</body></opml>"
    )

    def send(content: bytes, name: str = "feeds.opml"):
        form = {"csrf_token": csrf_of(page), "file": (BytesIO(content), name)}
        return client.post("/staff/feeds/opml", data=form, content_type="multipart/form-data")

    imported = send(opml.encode())
    assert imported.status_code == 200, imported.text
    assert "Read 2 feeds: 1 added, 0 already here, 1 refused." in imported.text
    assert "file:///etc/passwd: " in imported.text
    again = send(opml.encode())
    assert "Read 2 feeds: 0 added, 1 already here, 1 refused." in again.text

    exported = client.get("/staff/feeds/opml")
    assert exported.status_code == 200 and exported.content_type == "text/x-opml; charset=utf-8"
    assert 'xmlUrl="http://127.0.0.1:9/one.xml"' in exported.text

    entities = b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "ha">]><opml/>'
    refused = send(entities)
    assert refused.status_code == 400 and "DTD or entities" in refused.text
    not_text = send(b"\xff\xfe<opml/>")
    assert not_text.status_code == 400 and "not UTF-8 text" in not_text.text
    nothing = client.post("/staff/feeds/opml", data={"csrf_token": csrf_of(page)})
    assert nothing.status_code == 400 and "Choose an OPML file" in nothing.text
    no_token = client.post(
        "/staff/feeds/opml",
        data={"file": (BytesIO(opml.encode()), "feeds.opml")},
        content_type="multipart/form-data",
    )
    assert no_token.status_code == 400 and "form expired" in no_token.text
    assert client.get("/staff/audit").text.count("feed.added") == 1
