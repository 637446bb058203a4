"""Staff sign-in in Chromium: by the link mailed to the address and by password, the
signed-in page (checked by axe-core at desktop and phone widths), ending another session and
signing out."""

import re

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.browser.test_accessibility import RULES
from tests.integration.test_staff_end_to_end import PASSWORD, add_member
from tests.stack import wait_for

pytestmark = pytest.mark.integration


def test_sign_in_by_mailed_link_then_by_password_and_end_the_first(
    page, browser, site_url, clean_databases, mail_sink
):
    add_member(clean_databases, "ada@example.org", "admin", "Ada Lovelace", PASSWORD)
    page.goto("/staff/sign-in")
    page.get_by_label("Email address").fill("ada@example.org")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()

    mail = wait_for(lambda: mail_sink.to("ada@example.org"), what="the sign-in mail")[0]
    link = re.search(r"/staff/sign-in/[A-Za-z0-9_-]+", mail.message.get_body(("plain",))
                     .get_content()).group(0)  # fmt: skip
    page.goto(link)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Signed in as Ada Lovelace").wait_for()
    cookie = next(c for c in page.context.cookies() if c["name"] == "staff_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    other = browser.new_context(base_url=site_url).new_page()
    other.goto("/staff/sign-in")
    other.get_by_label("Email address").fill("ada@example.org")
    other.get_by_label("Password").fill(PASSWORD)
    other.get_by_role("button", name="Sign in").click()
    other.get_by_role("heading", name="Signed in as Ada Lovelace").wait_for()
    assert other.get_by_role("button", name=re.compile("^End the session")).count() == 2

    axe = Axe()
    for width in (1280, 375):
        other.set_viewport_size({"width": width, "height": 900})
        violations = axe.run(other, options=RULES).response["violations"]
        assert violations == [], [f"{v['id']}: {v['help']}" for v in violations]
        assert other.evaluate("document.documentElement.scrollWidth") <= width

    # From the second browser, end the first one's session: its next page is the sign-in.
    first = other.get_by_role("row").filter(has_not_text="(this one)").get_by_role("button")
    first.last.click()
    other.get_by_role("heading", name="Signed in as Ada Lovelace").wait_for()
    page.goto("/staff")
    page.get_by_role("heading", name="Staff sign-in").wait_for()

    other.get_by_role("button", name="Sign out").click()
    other.get_by_role("heading", name="Staff sign-in").wait_for()
    other.context.close()
