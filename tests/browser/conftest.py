"""A real browser: Playwright driving Debian's Chromium (``apt-get install chromium``, as
.ci/run does) against the gateway served by gunicorn, with the real workers behind it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

# The site's small world of cities, partnerships and stories.
from tests.site.conftest import site_world  # noqa: F401
from tests.stack import Stack, free_port, wait_for

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# Where screenshots are kept for people to look at after a run (CI keeps the folder).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
# Without these, Chromium keeps trying to reach Google's hosts from this closed network.
QUIET = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def site_url(stack, stack_env, tmp_path_factory) -> Iterator[str]:
    port = free_port()
    env = {**stack_env, "PORT": str(port), "GATEWAY_PROCESSES": "1", "GATEWAY_THREADS": "8"}
    server = Stack(env, tmp_path_factory.mktemp("gateway-logs"))
    server.start("gateway", "gateway")
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return requests.get(f"{url}/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    try:
        wait_for(answers, timeout=30, what="the gateway to serve")
        yield url
    finally:
        server.stop_all()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: `make test` finds or installs one (or set CHROMIUM_PATH)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=QUIET)
        yield launched
        launched.close()


class PageWatch:
    """What a page did that it should not: script errors, CSP refusals, other hosts."""

    def __init__(self, page, site_url: str):
        self.problems: list[str] = []
        self.site_url = site_url
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("request", self._request)

    def _console(self, message) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text} ({message.location.get('url')})")

    def _request(self, request) -> None:
        url = request.url
        # Story images stay on Medium's hosts; nothing else may leave the site.
        if not url.startswith((self.site_url, "data:", "https://miro.medium.com/")):
            self.problems.append(f"request off the site: {url}")


@pytest.fixture
def page(browser, site_url):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=site_url)
    context.route("**/*", lambda route: _closed_network(route, site_url))
    opened = context.new_page()
    opened.watch = PageWatch(opened, site_url)
    yield opened
    context.close()


# A one-pixel grey PNG standing in for the story images that live on Medium.
STAND_IN_IMAGE = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c633873e6cc7f000830036484b2be9b0000000049454e44ae426082"
)


def _closed_network(route, site_url: str) -> None:
    """As on this machine: nothing off the site answers, except a stand-in for Medium's
    story images (so that a page with stories loads without errors)."""
    url = route.request.url
    if url.startswith(site_url):
        route.continue_()
    elif url.startswith("https://miro.medium.com/"):
        route.fulfill(status=200, body=STAND_IN_IMAGE, content_type="image/png")
    else:
        route.abort()


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
