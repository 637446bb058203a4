"""DNS rebinding against the feed fetcher: a host name that resolves to a public address when it
is checked and to a loopback one when it is connected to must not get a request onto this
machine, over http or https, IPv4 or IPv6. And the defence must keep fetches working: the
socket goes to the resolved address while the Host header, TLS server name and certificate
check keep the host name.

No DNS server can run here, so ``socket.getaddrinfo`` is replaced, in-process, by a scripted
resolver: a real function that answers names from a script and counts lookups. Literal
addresses still go to the real resolver, and every connection is to a real local server."""

from __future__ import annotations

import socket
import ssl
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

import pytest
import trustme
import urllib3.connection
import urllib3.exceptions

from services.blog.connections import CheckedAddress, CheckedAddressAdapter, new_session
from services.blog.fetcher import FetchError, fetch
from tests.local_http_server import LocalHTTPServer

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
PUBLIC_V4, PUBLIC_V6 = "93.184.215.14", "2606:4700:4700::1111"


class ScriptedResolver:
    """Answers each name from a list of answers, one per lookup (the last one repeats)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.script: dict[str, list[list[str]]] = {}
        self.lookups: Counter[str] = Counter()
        real = socket.getaddrinfo

        def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
            if host not in self.script:
                return real(host, port, family, type, proto, flags)
            self.lookups[host] += 1
            answers = self.script[host]
            addresses = answers[min(self.lookups[host], len(answers)) - 1]
            if not addresses:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [
                info
                for address in addresses
                for info in real(address, port, family, type, proto, socket.AI_NUMERICHOST)
            ]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def answer(self, name: str, *answers: list[str]) -> None:
        self.script[name] = list(answers)


@pytest.fixture
def resolver(monkeypatch) -> ScriptedResolver:
    return ScriptedResolver(monkeypatch)


class Seen:
    """What a local server saw: the Host header of each request, the TLS server names."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        self.server_names: list[str | None] = []


@contextmanager
def feed_server(address: str, tls: ssl.SSLContext | None = None) -> Iterator[tuple[int, Seen]]:
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            seen.hosts.append(self.headers["Host"])
            self.send_response(200)
            self.send_header("Content-Length", str(len(FEED)))
            self.end_headers()
            self.wfile.write(FEED)

    class Server(LocalHTTPServer):
        address_family = socket.AF_INET6 if ":" in address else socket.AF_INET

        def get_request(self):
            sock, peer = super().get_request()
            if tls is not None:
                sock = tls.wrap_socket(sock, server_side=True)
            return sock, peer

    if tls is not None:
        tls.sni_callback = lambda sock, name, context: seen.server_names.append(name)
    # A short poll so that shutting down takes no half second a test.
    with Server(Handler, (address, 0), poll_interval=0.05) as httpd:
        yield httpd.port, seen


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


def tls_for(authority: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(*names).configure_cert(context)
    return context


@contextmanager
def https_feed(resolver, authority, tmp_path, certified: str) -> Iterator[tuple]:
    """https://feeds.example/feed, served on 127.0.0.1 with a certificate for ``certified``;
    and a session that trusts the test's authority."""
    resolver.answer("feeds.example", ["127.0.0.1"])
    session = new_session(allow_private=True)
    session.verify = str(tmp_path / "ca.pem")
    authority.cert_pem.write_to_path(session.verify)
    with feed_server("127.0.0.1", tls_for(authority, certified)) as (port, seen):
        yield f"https://feeds.example:{port}/feed", session, seen


def refusal(url: str, **options) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(url, **options)
    return caught.value


@pytest.mark.parametrize(
    ("public", "loopback", "listen_on"),
    [
        (PUBLIC_V4, "127.0.0.1", "127.0.0.1"),
        (PUBLIC_V6, "::1", "::1"),
        (PUBLIC_V6, "::ffff:127.0.0.1", "127.0.0.1"),
    ],
    ids=["ipv4", "ipv6", "ipv4-mapped"],
)
def test_a_name_that_rebinds_to_loopback_after_the_check_gets_no_request_through(
    resolver, public, loopback, listen_on
):
    resolver.answer("rebind.example", [public], [loopback])
    with feed_server(listen_on) as (port, seen):
        refused = refusal(f"http://rebind.example:{port}/feed")
    assert refused.code == "blocked_address"
    assert seen.hosts == []


def test_over_https_a_rebinding_name_does_not_even_get_a_handshake(resolver, authority):
    # The fetcher's own session: it does not trust this test's authority, but a connection
    # to the server would show in the server name it saw before the certificate was refused.
    resolver.answer("rebind.example", [PUBLIC_V4], ["127.0.0.1"])
    with feed_server("127.0.0.1", tls_for(authority, "rebind.example")) as (port, seen):
        refused = refusal(f"https://rebind.example:{port}/feed")
    assert refused.code == "blocked_address"
    assert (seen.hosts, seen.server_names) == ([], [])


def test_a_name_with_one_private_answer_among_public_ones_is_refused(resolver):
    resolver.answer("mixed.example", [PUBLIC_V4, "127.0.0.1"])
    with feed_server("127.0.0.1") as (port, seen):
        refused = refusal(f"http://mixed.example:{port}/feed")
    assert refused.code == "blocked_address"
    assert seen.hosts == []


def test_the_connection_goes_to_the_resolved_address_and_the_host_header_keeps_the_name(
    resolver,
):
    # Nothing listens on 127.0.0.2: a second lookup for the connection would fail to connect.
    resolver.answer("feeds.example", ["127.0.0.1"], ["127.0.0.2"])
    with feed_server("127.0.0.1") as (port, seen):
        result = fetch(f"http://feeds.example:{port}/feed", allow_private=True)
    assert result.body == FEED
    assert seen.hosts == [f"feeds.example:{port}"]
    assert resolver.lookups["feeds.example"] == 1


def test_a_literal_ipv6_address_is_connected_to_where_private_feeds_are_allowed():
    with feed_server("::1") as (port, seen):
        assert fetch(f"http://[::1]:{port}/feed", allow_private=True).body == FEED
    assert seen.hosts == [f"[::1]:{port}"]


def test_a_kept_alive_connection_is_reused_without_a_new_lookup(resolver):
    resolver.answer("feeds.example", ["127.0.0.1"])
    session = new_session(allow_private=True)
    with feed_server("127.0.0.1") as (port, seen):
        for _ in range(3):
            fetch(f"http://feeds.example:{port}/feed", allow_private=True, session=session)
    assert len(seen.hosts) == 3
    assert resolver.lookups["feeds.example"] == 1


def test_over_https_the_server_name_and_the_certificate_check_keep_the_host_name(
    resolver, authority, tmp_path
):
    with https_feed(resolver, authority, tmp_path, "feeds.example") as (url, session, seen):
        result = fetch(url, allow_private=True, session=session)
    assert result.body == FEED
    assert seen.server_names == ["feeds.example"]
    assert seen.hosts == [url.split("/")[2]]


def test_over_https_a_certificate_for_the_connected_address_but_not_the_name_is_refused(
    resolver, authority, tmp_path
):
    with https_feed(resolver, authority, tmp_path, "127.0.0.1") as (url, session, seen):
        refused = refusal(url, allow_private=True, session=session)
    assert refused.code == "connection"
    assert seen.hosts == []


def _connect_error(connection: urllib3.connection.HTTPConnection) -> type[Exception]:
    with pytest.raises(urllib3.exceptions.HTTPError) as caught:
        connection.connect()
    return type(caught.value)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("host", ["127.0.0.1", "nowhere.example"], ids=["refused", "no-such-name"])
def test_a_checked_connection_fails_with_the_same_error_as_urllib3s_own(resolver, host):
    # The checked connection replaces urllib3's _new_conn: an upgrade that changes what the
    # original raises should fail here, not surprise the fetcher's error handling.
    resolver.answer("nowhere.example", [])
    port = _closed_port()
    adapter = CheckedAddressAdapter(allow_private=True)
    checked = adapter.poolmanager.connection_from_host(host, port, "http")._new_conn()
    assert isinstance(checked, CheckedAddress)
    own = urllib3.connection.HTTPConnection(host, port)
    assert _connect_error(checked) is _connect_error(own)
