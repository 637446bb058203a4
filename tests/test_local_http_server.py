"""The tests' own HTTP servers keep their handler threads inside their test: a client's reset
prints nothing from the background, a connection left open ends with the server, and a bug in
a handler fails the test that owns the server (tests/local_http_server.py says why)."""

import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from tests.local_http_server import LocalHTTPServer
from tests.stack import wait_for

REQUEST = b"GET /feed HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


class Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # kept alive, as the blog's fetcher asks

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/broken":
            raise KeyError("a bug in the handler")
        body = b"<rss/>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def handler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "process_request_thread" in t.name]


def ask(port: int, request: bytes = REQUEST) -> socket.socket:
    """A connection that has read one whole answer (headers and body come in two writes)."""
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(request)
    answer = b""
    while not answer.endswith(b"<rss/>"):
        chunk = client.recv(4096)
        assert chunk, f"the server closed the connection after {answer!r}"
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    return client


def test_a_client_that_resets_its_connection_is_counted_and_nothing_is_printed(capfd):
    with LocalHTTPServer(Answer) as server:
        client = ask(server.port)
        # Close with unread data's effect: linger 0 sends a reset, as a pool dropping its
        # connection does; the handler meets it while waiting for the next request.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        wait_for(lambda: server.client_resets == 1, timeout=10, what="the reset to be seen")
    assert "Exception occurred" not in capfd.readouterr().err
    assert server.errors == []


def test_a_connection_left_open_ends_with_its_server():
    before = set(handler_threads())
    with LocalHTTPServer(Answer) as server:
        client = ask(server.port)
        waiting = set(handler_threads()) - before
        assert len(waiting) == 1, "the handler should be waiting for the next request"
    with client:
        # The server is closed: its handler has ended, though the client never closed.
        assert not any(thread.is_alive() for thread in waiting)
        assert client.recv(1) == b""


def test_a_bug_in_a_handler_fails_the_test_that_owns_the_server():
    server = LocalHTTPServer(Answer).start()
    client = socket.create_connection(("127.0.0.1", server.port))
    client.sendall(REQUEST.replace(b"/feed", b"/broken"))
    assert client.recv(4096) == b""  # the handler died; the connection is closed
    client.close()
    with pytest.raises(AssertionError, match="a bug in the handler"):
        server.close()
    server.close()  # a second close is quiet
