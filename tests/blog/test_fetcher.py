"""Fetching feeds from a real local HTTP server: conditional GET, and every hostile server
bounded in time and size with a clear error."""

import functools
import gzip
import time
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler

import pytest

from services.blog.fetcher import FetchError, fetch, retry_after_seconds
from tests.local_http_server import LocalHTTPServer

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        route = getattr(self, f"route_{self.path.strip('/').split('?')[0] or 'feed'}", None)
        if route is None:
            self.send_response(404)
            self.end_headers()
            return
        route()

    def route_feed(self):
        if self.headers.get("If-None-Match") == '"v1"':
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("ETag", '"v1"')
        self.send_header("Last-Modified", "Sat, 28 Nov 2026 08:00:00 GMT")
        self.send_header("Content-Length", str(len(FEED)))
        self.end_headers()
        self.wfile.write(FEED)

    def route_gzipped(self):
        body = gzip.compress(FEED)
        self.send_response(200)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route_huge(self):
        self.send_response(200)
        self.end_headers()
        chunk = b"x" * 65536
        try:
            for _ in range(200):  # 12.5 MiB, more than the cap
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def route_trickle(self):
        self.send_response(200)
        self.end_headers()
        try:
            for _ in range(60):
                self.wfile.write(b"<")
                self.wfile.flush()
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def route_loop(self):
        self.send_response(302)
        self.send_header("Location", "/loop")
        self.end_headers()

    def route_busy(self):
        self.send_response(429)
        self.send_header("Retry-After", "120")
        self.end_headers()

    def route_busy_until(self):
        self.send_response(503)
        later = datetime.now(UTC) + timedelta(hours=2)
        self.send_header("Retry-After", format_datetime(later, usegmt=True))
        self.end_headers()


@pytest.fixture(scope="module")
def server():
    with LocalHTTPServer(Handler) as httpd:
        yield f"http://127.0.0.1:{httpd.port}"


def test_a_feed_is_fetched_with_its_validators(server):
    result = fetch(f"{server}/feed", allow_private=True)
    assert result.status == 200 and result.body == FEED
    assert result.etag == '"v1"'
    assert result.last_modified == "Sat, 28 Nov 2026 08:00:00 GMT"


def test_an_unchanged_feed_costs_no_body(server):
    result = fetch(f"{server}/feed", etag='"v1"', allow_private=True)
    assert result.not_modified and result.body is None


def test_gzip_is_accepted_and_decoded(server):
    assert fetch(f"{server}/gzipped", allow_private=True).body == FEED


def test_private_addresses_are_refused_unless_allowed(server):
    with pytest.raises(FetchError) as caught:
        fetch(f"{server}/feed")
    assert caught.value.code == "blocked_address"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/feed", "javascript:x"])
def test_only_http_and_https(url):
    with pytest.raises(FetchError) as caught:
        fetch(url, allow_private=True)
    assert caught.value.code == "bad_url"


def test_a_body_past_the_cap_is_cut_off(server):
    with pytest.raises(FetchError) as caught:
        fetch(f"{server}/huge", allow_private=True, max_bytes=10 * 1024 * 1024)
    assert caught.value.code == "too_large"


def test_a_trickling_server_is_given_up_on(server):
    with pytest.raises(FetchError) as caught:
        fetch(f"{server}/trickle", allow_private=True, total_seconds=1.0)
    assert caught.value.code == "timeout"


def test_a_redirect_loop_ends(server):
    with pytest.raises(FetchError) as caught:
        fetch(f"{server}/loop", allow_private=True)
    assert caught.value.code == "too_many_redirects"


def test_a_server_may_say_when_to_come_back_as_a_date(server):
    with pytest.raises(FetchError) as caught:
        fetch(f"{server}/busy_until", allow_private=True)
    assert caught.value.status == 503
    assert 7190 <= caught.value.retry_after <= 7200


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("Tue, 08 Dec 2026 12:00:00 GMT", 3600.0),
        ("Tue, 08 Dec 2026 10:00:00 GMT", 0.0),  # past: at once
        ("soon", None),
        ("", None),
        (None, None),
        ("Tue, 99 Foo 2026", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(value, seconds):
    now = datetime(2026, 12, 8, 11, 0, tzinfo=UTC)
    assert retry_after_seconds(value, now) == seconds


def test_a_busy_server_says_when_to_come_back(server):
    with pytest.raises(FetchError) as caught:
        fetch(f"{server}/busy", allow_private=True)
    assert (caught.value.code, caught.value.status, caught.value.retry_after) == (
        "http_error",
        429,
        120.0,
    )


def _endless(handler):
    """A chunked body that never ends."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/rss+xml")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = b"<item>" + b"x" * 65536 + b"</item>"
    try:
        while True:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    except OSError:
        pass


def _fifty_mib(handler):
    size = 50 * 1024 * 1024
    handler.send_response(200)
    handler.send_header("Content-Length", str(size))
    handler.end_headers()
    block = b"y" * (1024 * 1024)
    try:
        for _ in range(50):
            handler.wfile.write(block)
    except OSError:
        pass


@functools.cache
def _bomb() -> bytes:
    """200 MiB of zeros as about 200 KB of gzip, built without holding 200 MiB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    block = bytes(1024 * 1024)
    return b"".join(packer.compress(block) for _ in range(200)) + packer.flush()


def _gzip_bomb(handler):
    body = _bomb()
    handler.send_response(200)
    handler.send_header("Content-Encoding", "gzip")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _challenge(handler):
    body = b"<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>"
    handler.send_response(403)
    handler.send_header("Content-Type", "text/html")
    handler.send_header("cf-mitigated", "challenge")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@pytest.mark.parametrize("answer", [_endless, _fifty_mib, _gzip_bomb])
def test_endless_huge_and_compressed_bodies_are_bounded_in_time_and_memory(answer):
    import tracemalloc

    from tests.feed_server import FeedServer

    _bomb()  # built before memory is watched
    with FeedServer() as feeds:
        url = feeds.serve("/feed", custom=answer)
        tracemalloc.start()
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            fetch(url, allow_private=True)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert caught.value.code == "too_large"
    assert peak < 40 * 1024 * 1024, peak  # the 10 MiB cap, and not much more
    assert elapsed < 30


def test_a_bot_challenge_is_named_as_such():
    from tests.feed_server import FeedServer

    with FeedServer() as feeds:
        url = feeds.serve("/feed", custom=_challenge)
        with pytest.raises(FetchError) as caught:
            fetch(url, allow_private=True)
    assert (caught.value.code, caught.value.status) == ("challenge", 403)
    assert "Cloudflare" in caught.value.message
