"""The staff workspace in Chromium, issue 15's scenario: an admin signs in by the mailed link
and adds an editor; the editor signs in the same way, adds a partnership by typing both
cities' names, sees it on the city's public page, corrects a story's cities and hides a
story; the history names the editor for each. An editor cannot reach admin-only pages or
API, and a revoked session stops working at once. The forms work without JavaScript too."""

import re

import pytest
import requests
from axe_playwright_python.sync_playwright import Axe
from sqlalchemy import update

from services.blog.models import Post
from services.directory.index_version import bump_version
from services.directory.models import City
from shared.db import make_session_factory, session_scope
from tests.browser.test_accessibility import RULES
from tests.conftest import add_test_cities
from tests.integration.test_staff_end_to_end import add_member
from tests.stack import wait_for

pytestmark = pytest.mark.integration

ADMIN, EDITOR = "ada@example.org", "eve@example.org"
FEED = "http://127.0.0.1:9/feed.xml"  # nothing listens there: the feed's health says so


def sign_in_by_mailed_link(page, mail_sink, email: str, name: str) -> None:
    page.goto("/staff/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    mail = wait_for(lambda: mail_sink.to(email), what=f"the sign-in mail to {email}")[-1]
    body = mail.message.get_body(("plain",)).get_content()
    page.goto(re.search(r"/staff/sign-in/[A-Za-z0-9_-]+", body).group(0))
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name=f"Signed in as {name}").wait_for()


def accessible_at_desktop_and_phone_widths(page, path: str) -> None:
    page.goto(path)
    axe = Axe()
    for width in (1280, 375):
        page.set_viewport_size({"width": width, "height": 900})
        violations = axe.run(page, options=RULES).response["violations"]
        assert violations == [], (path, width, [f"{v['id']}: {v['help']}" for v in violations])
        assert page.evaluate("document.documentElement.scrollWidth") <= width, (path, width)
    page.set_viewport_size({"width": 1280, "height": 900})


def choose_city(page, label: str, typed: str, shown: str) -> None:
    """Type a name and take the suggestion that shows the city's country."""
    page.get_by_label(label, exact=True).fill(typed)
    page.get_by_role("option", name=re.compile(shown)).first.click()


@pytest.fixture
def kuopio(site_world, clean_databases, services) -> int:
    engine = clean_databases["directory"]
    [city_id] = add_test_cities(engine, [("Kuopio", "FI", 62.89, 27.68, 120_000)])
    with session_scope(make_session_factory(engine)) as session:
        session.execute(update(City).where(City.id == city_id).values(region="North Savo"))
        bump_version(session)

    def indexed() -> bool:
        found = services.call("directory.search_cities", "Kuopio")["results"]
        return bool(found) and (found[0]["id"], found[0]["region"]) == (city_id, "North Savo")

    wait_for(indexed, timeout=30, what="the directory to index Kuopio")
    return city_id


def test_an_editor_adds_a_partnership_corrects_and_hides_stories_on_record(
    page, browser, site_url, site_world, kuopio, clean_databases, mail_sink
):
    add_member(clean_databases, ADMIN, "admin", "Ada Admin")
    sign_in_by_mailed_link(page, mail_sink, ADMIN, "Ada Admin")
    page.get_by_role("link", name="Staff", exact=True).click()
    page.get_by_label("Email address").fill(EDITOR)
    page.get_by_label("Name").fill("Eve Editor")
    page.get_by_label("Role").select_option("editor")
    page.get_by_role("button", name="Add the member").click()
    page.get_by_role("cell", name=EDITOR).wait_for()

    editor = browser.new_context(base_url=site_url).new_page()
    sign_in_by_mailed_link(editor, mail_sink, EDITOR, "Eve Editor")

    # A partnership, by typing both names (the suggestions show region and country).
    editor.get_by_role("link", name="Partnerships").click()
    choose_city(editor, "City", "Minneapolis", "United States")
    choose_city(editor, "Sister city", "Kuopio", "North Savo, Finland")
    editor.get_by_label("Since (year)").fill("1972")
    editor.get_by_role("button", name="Add the partnership").click()
    editor.get_by_role("status").filter(has_text="added").wait_for()
    assert editor.get_by_role("link", name=re.compile("Minneapolis.*Kuopio")).count() == 1

    minneapolis = site_world.cities["Minneapolis"]

    def shown_on_the_public_page() -> bool:
        editor.goto(f"/cities/{minneapolis}")
        return editor.get_by_text("Kuopio").count() > 0

    wait_for(shown_on_the_public_page, timeout=30, interval=0.5, what="Kuopio on Minneapolis")

    # A story's cities corrected: Tours added, Najaf removed.
    najaf_story = site_world.stories["najaf"]
    with clean_databases["blog"].begin() as conn:  # what the directory found, with evidence
        found = [{"id": site_world.cities["Najaf"], "evidence": ["'Najaf' in the title"]}]
        conn.execute(update(Post).where(Post.id == najaf_story).values(found_cities=found))
    editor.goto(f"/staff/stories/{najaf_story}")
    choose_city(editor, "Add a city", "Tours", "France")
    editor.get_by_role("button", name="Add the city").click()
    editor.get_by_role("button", name="Remove Tours").wait_for()
    editor.get_by_role("button", name="Remove Najaf").click()
    editor.get_by_role("button", name="Remove Najaf").wait_for(state="detached")

    # A story hidden: its public page is gone.
    hidden_story = site_world.stories["minneapolis"]
    editor.goto("/staff/stories")
    editor.get_by_role("button", name="Hide Minneapolis day").click()
    editor.get_by_role("button", name="Show Minneapolis day").wait_for()
    assert requests.get(f"{site_url}/blog/{hidden_story}", timeout=10).status_code == 404

    # A feed added and polled now; its health shows (its address does not answer).
    editor.goto("/staff/feeds")
    editor.get_by_label("Add a feed").fill(FEED)
    editor.get_by_role("button", name="Add the feed").click()
    editor.get_by_role("button", name=re.compile("^Poll .* now")).click()
    editor.get_by_text("Health:").wait_for()

    # The history names the editor for each change, whichever service recorded it.
    page.goto("/staff/audit")
    rows = page.get_by_role("row")
    for action, subject in (
        ("partnership.created", "partnership"),
        ("story.city_add", f"story {najaf_story}"),
        ("story.city_remove", f"story {najaf_story}"),
        ("story.hidden", f"story {hidden_story}"),
        ("feed.added", "feed"),
        ("feed.poll_requested", "feed"),
    ):
        by_the_editor = rows.filter(has_text=action).filter(has_text=subject)
        assert by_the_editor.filter(has_text="Eve Editor").count() == 1, action
    assert rows.filter(has_text="staff.added").filter(has_text="Ada Admin").count() >= 1

    partnership_page = editor_partnership_page(page)
    page.goto("/staff/members")
    sessions_page = page.get_by_role("link", name="Sessions of Eve Editor").get_attribute("href")
    for path in ("/staff/partnerships", partnership_page, "/staff/stories",
                 f"/staff/stories/{najaf_story}", f"/staff/cities/{minneapolis}",
                 "/staff/feeds", "/staff/members", sessions_page, "/staff",
                 "/staff/audit"):  # fmt: skip
        accessible_at_desktop_and_phone_widths(page, path)

    # The feed removed, its stories kept.
    editor.goto("/staff/feeds")
    editor.get_by_role("button", name=re.compile("^Remove ")).click()
    editor.get_by_text("No feed yet.").wait_for()
    page.goto("/staff/audit")
    removed = page.get_by_role("row").filter(has_text="feed.removed")
    assert removed.filter(has_text="Eve Editor").count() == 1

    # An editor reaches neither the admins' page nor the admins' API.
    assert editor.goto("/staff/members").status == 403
    assert editor.request.get("/api/v1/admin/staff").status == 403
    assert editor.request.get("/api/v1/admin/subscribers/stats").status == 403

    # The admin ends the editor's sessions: the editor's next page is the sign-in.
    me = page.request.get("/api/v1/admin/staff/me").json()
    editor_id = next(
        m["id"] for m in page.request.get("/api/v1/admin/staff").json()["results"]
        if m["email"] == EDITOR
    )  # fmt: skip
    sessions = page.request.get(f"/api/v1/admin/staff/sessions?staff_id={editor_id}").json()
    for session in sessions["results"]:
        ended = page.request.delete(
            f"/api/v1/admin/staff/sessions/{session['id']}",
            headers={"X-CSRF-Token": me["csrf_token"]},
        )
        assert ended.status == 200
    editor.goto("/staff/partnerships")
    editor.get_by_role("heading", name="Staff sign-in").wait_for()
    assert editor.request.get("/api/v1/admin/audit").status == 401
    editor.context.close()
    assert page.watch.problems == []


def editor_partnership_page(page) -> str:
    page.goto("/staff/partnerships")
    return page.get_by_role("link", name=re.compile("Minneapolis.*Kuopio")).get_attribute("href")


def test_the_workspace_forms_work_without_javascript(
    browser, site_url, site_world, clean_databases, mail_sink
):
    add_member(clean_databases, EDITOR, "editor", "Eve Editor")
    context = browser.new_context(base_url=site_url, java_script_enabled=False)
    page = context.new_page()
    sign_in_by_mailed_link(page, mail_sink, EDITOR, "Eve Editor")
    page.goto("/staff/partnerships")
    page.get_by_label("City", exact=True).fill("Tours")
    page.get_by_label("Sister city").fill("Uppsala")
    page.get_by_role("button", name="Add the partnership").click()
    page.get_by_role("status").filter(has_text="added").wait_for()
    assert page.get_by_role("link", name=re.compile("Tours.*Uppsala")).count() == 1

    page.get_by_role("link", name=re.compile("Tours.*Uppsala")).click()
    page.get_by_label("Status").select_option("inactive")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("status").filter(has_text="Saved").wait_for()
    assert page.get_by_role("row").filter(has_text="partnership.updated").count() == 1
    context.close()


def test_an_editor_merges_a_duplicate_city_chosen_from_the_suggestions_and_features_a_story(
    page, site_url, site_world, clean_databases, services, mail_sink
):
    minneapolis = site_world.cities["Minneapolis"]
    [duplicate] = add_test_cities(clean_databases["directory"], [("Mpls", "US", 44.98, -93.26, 10)])
    wait_for(
        lambda: (
            [r["id"] for r in services.call("directory.search_cities", "Mpls")["results"]][:1]
            == [duplicate]
        ),
        timeout=30,
        what="the directory to index the duplicate",
    )
    add_member(clean_databases, EDITOR, "editor", "Eve Editor")
    sign_in_by_mailed_link(page, mail_sink, EDITOR, "Eve Editor")

    page.goto(f"/staff/cities/{duplicate}")
    page.get_by_label("Population").fill("12")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("status").filter(has_text="Saved").wait_for()
    choose_city(page, "The city that stays", "Minneapolis", "United States")
    page.get_by_role("button", name="Merge Mpls into it").click()
    page.get_by_role("status").filter(has_text="was merged into this one").wait_for()
    assert page.url.endswith(f"/staff/cities/{minneapolis}?merged={duplicate}")
    assert "Mpls" in page.get_by_label("Other names it is searched by, one a line").input_value()
    # The old address leads to the survivor's page.
    page.goto(f"/cities/{duplicate}")
    assert page.url.endswith(f"/cities/{minneapolis}")

    najaf_story = site_world.stories["najaf"]
    page.goto(f"/staff/stories/{najaf_story}")
    page.get_by_role("button", name="Feature on the home page").click()
    page.get_by_role("status").filter(has_text="Featured on the home page").wait_for()

    def featured_on_the_home_page() -> bool:
        page.goto("/")
        return page.get_by_role("region", name="Featured story").count() == 1

    wait_for(featured_on_the_home_page, timeout=30, interval=0.5, what="the featured story")
    assert page.get_by_role("region", name="Featured story").get_by_text("A visit to Najaf").count()
