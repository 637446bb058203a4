"""Campaigns in Chromium: an admin signs in by the mailed link, writes a campaign for the
followers of one city in the workspace, previews it as a subscriber, sends it; exactly that
city's follower gets it, and it shows on the Take Action pages and the home page. Every
page passes axe-core at desktop and phone widths."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import insert

from services.notifier.models import Subscriber
from shared.events import utcnow
from tests.browser.test_workspace_in_browser import (
    ADMIN,
    accessible_at_desktop_and_phone_widths,
    sign_in_by_mailed_link,
)
from tests.integration.test_staff_end_to_end import add_member
from tests.stack import wait_for

pytestmark = pytest.mark.integration


def test_an_admin_writes_previews_and_sends_a_campaign(
    page, site_world, clean_databases, mail_sink
):
    minneapolis = site_world.cities["Minneapolis"]
    confirmed = utcnow() - timedelta(days=1)
    with clean_databases["notifier"].begin() as conn:
        conn.execute(insert(Subscriber), [
            {"email": email, "frequency": "weekly", "weekday": 0, "city_ids": cities,
             "status": "confirmed", "created_at": confirmed, "confirmed_at": confirmed,
             "soft_failures": 0}
            for email, cities in (("mpls@example.org", [minneapolis]),
                                  ("elsewhere@example.org", [minneapolis + 1]))
        ])  # fmt: skip
    add_member(clean_databases, ADMIN, "admin", "Ada Admin")
    sign_in_by_mailed_link(page, mail_sink, ADMIN, "Ada Admin")

    page.goto("/staff/campaigns")
    page.get_by_label("Subject").fill("Minneapolis needs you")
    page.get_by_label(re.compile("^Message")).fill("Write to the **council** today.")
    page.get_by_label(re.compile("^Followers of these cities")).fill(f"#{minneapolis}")
    page.get_by_role("button", name="Save the draft").click()
    page.get_by_role("heading", name="Minneapolis needs you").wait_for()
    campaign_page = page.url.split("?")[0].removeprefix(page.url.split("/staff")[0])

    page.get_by_label(re.compile("^As this subscriber")).fill("mpls@example.org")
    page.get_by_role("button", name="Preview").click()
    page.get_by_text("mpls@example.org (confirmed) is in its audience").wait_for()
    page.get_by_role("button", name=re.compile("^Send a test to")).click()
    page.get_by_text(f"A test copy is on its way to {ADMIN}").wait_for()
    wait_for(lambda: len(mail_sink.to(ADMIN)) == 2, what="the test copy")  # and the sign-in

    for path in ("/staff/campaigns", campaign_page):
        accessible_at_desktop_and_phone_widths(page, path)
    page.goto(campaign_page)
    page.get_by_role("button", name="Send to 1 subscribers").click()
    wait_for(lambda: mail_sink.to("mpls@example.org"), timeout=60, what="the campaign")
    page.goto(campaign_page)
    wait_for(lambda: page.reload() and page.get_by_text("Status: sent").count() == 1,
             timeout=60, what="the campaign to be sent")  # fmt: skip
    assert mail_sink.to("elsewhere@example.org") == []

    page.goto("/take-action")
    page.get_by_role("link", name="Minneapolis needs you").click()
    page.get_by_text("Write to the council today.").wait_for()
    assert page.locator("strong", has_text="council").count() == 1
    for path in ("/take-action", page.url.removeprefix(page.url.split("/take-action")[0]), "/"):
        accessible_at_desktop_and_phone_widths(page, path)
    page.goto("/")
    section = page.locator("section.take-action")
    assert section.get_by_role("link", name="Minneapolis needs you").count() == 1
    assert section.get_by_role("link", name="Donate").count() == 1
