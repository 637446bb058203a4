"""/api/docs in Chromium: Swagger UI renders the whole document from the site's own files,
under the site's Content-Security-Policy, asking no other host."""

import pytest

pytestmark = pytest.mark.integration


def test_a_browser_renders_the_docs_asking_no_other_host(page, site_url):
    page.goto("/api/docs")
    page.wait_for_selector(".opblock", timeout=15_000)
    title = page.locator(".info .title").first.inner_text()
    assert "Sister Cities API" in title and "OAS 3.1" in title
    assert page.locator(".opblock").count() >= 15
    # Script errors, CSP refusals and requests off the site, as the page fixture watches them.
    assert page.watch.problems == []
