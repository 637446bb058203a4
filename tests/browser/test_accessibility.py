"""Every kind of page checked by axe-core (the engine behind Lighthouse's accessibility audit)
in Chromium: labels, landmarks, contrast, names of links and buttons, ARIA used correctly."""

import pytest
from axe_playwright_python.sync_playwright import Axe

pytestmark = pytest.mark.integration

# WCAG 2.1 A and AA, the level public bodies are held to.
RULES = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def pages(world) -> list[str]:
    return [
        "/",
        "/cities?q=minnea",
        "/cities?q=Minneapols",
        f"/cities/{world.cities['Minneapolis']}",
        "/blog",
        f"/blog/{world.stories['najaf']}",
        "/subscribe",
        "/subscribe/check-your-inbox",
        "/staff/sign-in",
        "/staff/sign-in/a-link-token-of-the-right-shape",
        "/no/such/page",
    ]


@pytest.mark.parametrize("width", [1280, 375], ids=["desktop", "phone"])
def test_pages_have_no_accessibility_violations(page, site_world, width):
    page.set_viewport_size({"width": width, "height": 900})
    axe = Axe()
    found = {}
    for path in pages(site_world):
        page.goto(path)
        violations = axe.run(page, options=RULES).response["violations"]
        if violations:
            found[path] = [
                f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes'][0]['target']}"
                for v in violations
            ]
    assert found == {}
    # Wide tables scroll inside their box; the page itself never scrolls sideways.
    page.goto(f"/cities/{site_world.cities['Minneapolis']}")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
