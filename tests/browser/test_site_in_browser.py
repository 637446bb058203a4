"""The site in Chromium: find a city by typing, see its sisters on the map, subscribe through
the mailed link, unsubscribe with one click. Screenshots go to test-artifacts/screenshots/."""

import re

import pytest

from tests.browser.conftest import screenshot
from tests.stack import wait_for

pytestmark = pytest.mark.integration


def test_type_minnea_choose_minneapolis_and_see_najaf(page, site_world):
    page.goto("/")
    screenshot(page, "home")
    search = page.get_by_role("combobox", name="Your city")
    search.press_sequentially("Minnea", delay=40)
    option = page.get_by_role("option", name=re.compile("^Minneapolis"))
    option.wait_for()
    assert search.get_attribute("aria-expanded") == "true"
    # Keyboard only: down to the first suggestion, Enter to open it.
    search.press("ArrowDown")
    assert option.get_attribute("aria-selected") == "true"
    search.press("Enter")
    page.wait_for_url(f"**/cities/{site_world.cities['Minneapolis']}")

    assert page.get_by_role("heading", level=1).inner_text() == "Minneapolis"
    sisters = page.locator("table.sisters tbody th").all_inner_texts()
    assert "Najaf" in sisters
    # On the map: Najaf's marker, and the routes drawn from Minneapolis.
    assert page.locator("svg circle title", has_text="Najaf, Iraq").count() == 1
    assert page.locator("svg .routes polyline").count() >= len(sisters)
    assert page.locator("svg image").evaluate("image => image.getBBox().width") > 0
    screenshot(page, "city")

    page.get_by_role("link", name="Najaf").first.click()
    page.wait_for_url(f"**/cities/{site_world.cities['Najaf']}")
    page.goto("/blog")
    assert page.get_by_role("link", name="A visit to Najaf", exact=True).count() == 1
    screenshot(page, "blog")
    assert page.watch.problems == []


def test_the_search_form_works_without_javascript(browser, site_url, site_world):
    context = browser.new_context(java_script_enabled=False, base_url=site_url)
    page = context.new_page()
    page.goto("/")
    page.get_by_role("combobox", name="Your city").fill("Minneapols")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/cities?q=Minneapols")
    assert "Did you mean" in page.inner_text("main")
    page.get_by_role("link", name="Minneapolis, United States").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Minneapolis"
    context.close()


def test_subscribe_confirm_by_mail_and_unsubscribe_with_one_click(
    page, site_url, site_world, mail_sink
):
    address = "browser.reader@example.org"
    page.goto("/subscribe")
    # The subscribe form's field: the page also has the lost-link form's.
    page.locator("#email").fill(address)
    page.get_by_label("Daily").check()
    follow = page.get_by_role("combobox", name=re.compile("Cities to follow"))
    follow.press_sequentially("Najaf", delay=40)
    page.get_by_role("option", name=re.compile("^Najaf")).click()
    assert page.locator(".chips li").inner_text().startswith("Najaf, Iraq")
    screenshot(page, "subscribe")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_url("**/subscribe/check-your-inbox")
    assert page.get_by_role("heading", level=1).inner_text() == "Check your inbox"

    mail = wait_for(lambda: mail_sink.to(address), what="the confirmation mail")[0].message
    text = mail.get_body(("plain",)).get_content()
    confirm = re.search(r"https?://\S+/subscriptions/confirm/\S+", text).group(0)
    page.goto(site_url + confirm.split("sistercities.test", 1)[1])
    assert page.get_by_role("heading", level=1).inner_text() == "Confirm your subscription"
    page.get_by_role("button", name="Confirm my subscription").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Subscription confirmed"
    page.get_by_role("link", name="Choose what you get").click()
    assert page.get_by_label("Daily").is_checked()
    assert page.locator(".chips li").inner_text().startswith("Najaf")
    screenshot(page, "preferences")

    page.get_by_role("link", name="Unsubscribe").click()
    page.get_by_role("button", name="Unsubscribe").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Unsubscribed"
    assert page.watch.problems == []
