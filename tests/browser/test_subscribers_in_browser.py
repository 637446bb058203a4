"""Subscribers in the workspace, in Chromium without JavaScript: an admin signed in by the
mailed link reaches them from the nav, finds one by address, sends their confirmation again
(it arrives), unsubscribes them, and erases them after the confirmation page; each page
passes axe-core at desktop and phone widths."""

import re

import pytest

from tests.browser.test_workspace_in_browser import (
    ADMIN,
    accessible_at_desktop_and_phone_widths,
    sign_in_by_mailed_link,
)
from tests.integration.test_staff_end_to_end import add_member
from tests.notifier.test_subscriber_admin import add, texts_holding
from tests.stack import wait_for

pytestmark = pytest.mark.integration

ADDRESS = "pending.reader@example.org"


def test_an_admin_finds_and_erases_a_subscriber_without_javascript(
    browser, site_url, clean_databases, mail_sink
):
    add_member(clean_databases, ADMIN, "admin", "Ada Admin")
    subscriber_id = add(clean_databases["notifier"], ADDRESS, status="pending")
    add(clean_databases["notifier"], "someone@example.org")
    context = browser.new_context(base_url=site_url, java_script_enabled=False)
    page = context.new_page()
    sign_in_by_mailed_link(page, mail_sink, ADMIN, "Ada Admin")

    page.goto("/staff/partnerships")
    page.get_by_role("navigation", name="Workspace").get_by_role("link", name="Subscribers").click()
    page.get_by_label("Find by the start of the address").fill("PENDING.")
    page.get_by_role("button", name="Find").click()
    rows = page.get_by_role("row")
    assert rows.filter(has_text=ADDRESS).count() == 1 and rows.count() == 2  # and the header
    page.get_by_role("link", name=ADDRESS).click()

    page.get_by_role("button", name="Send the confirmation again").click()
    page.get_by_role("status").filter(has_text="confirmation sent").wait_for()
    wait_for(lambda: mail_sink.to(ADDRESS), what="the confirmation sent again")
    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_role("status").filter(has_text="unsubscribed").wait_for()
    history = page.get_by_role("row").filter(has_text="Ada Admin")
    assert history.filter(has_text="subscriber.unsubscribed").count() == 1

    page.get_by_role("link", name=re.compile("Erase on request")).click()
    page.get_by_label("The subscriber asked to be erased").check()
    page.get_by_role("button", name="Erase the address").click()
    page.get_by_role("heading", name=f"Erased subscriber {subscriber_id}").wait_for()
    assert texts_holding(clean_databases["notifier"], ADDRESS) == []
    context.close()


def test_the_subscriber_pages_are_accessible(page, clean_databases, mail_sink):
    add_member(clean_databases, ADMIN, "admin", "Ada Admin")
    subscriber_id = add(clean_databases["notifier"], ADDRESS, status="pending", cities=[7])
    sign_in_by_mailed_link(page, mail_sink, ADMIN, "Ada Admin")
    for path in (
        "/staff/subscribers",
        "/staff/subscribers?q=pending",
        f"/staff/subscribers/{subscriber_id}",
        f"/staff/subscribers/{subscriber_id}/erase",
    ):
        accessible_at_desktop_and_phone_widths(page, path)
    assert page.watch.problems == []
