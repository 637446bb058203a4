"""The HTTP servers the tests run on 127.0.0.1 (a feed host, a WebSub hub, a TLS host), on one
base that keeps each handler thread inside the test that started its server.

socketserver's defaults leave two things to chance. A handler thread that meets an error prints
a traceback to the test process's stderr from the background, and our clients end kept-alive
connections with a reset (the blog's fetcher closes a response it has read what it needs of).
And a handler waiting on a kept-alive connection outlives its server and its test, so whatever
it meets later (the blog's worker dropping its pool) happens during another test, which pytest
then fails for a thread it never started. Here a client that goes away is counted, any other
handler error is kept and raised by ``close()`` in the test's own thread, and ``close()`` ends
every connection still open and waits for its handler."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# How long close() waits for a handler to see its connection end (a handler asleep in a
# route that hangs on purpose finishes later, unwatched).
HANDLER_JOIN_SECONDS = 2.0


class LocalHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        address: tuple[str, int] = ("127.0.0.1", 0),
        poll_interval: float = 0.5,
    ) -> None:
        super().__init__(address, handler)
        self.client_resets = 0
        self.errors: list[BaseException] = []
        self._open: dict[socket.socket, threading.Thread] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._serving = threading.Thread(
            target=self.serve_forever, args=(poll_interval,), daemon=True
        )

    def start(self) -> LocalHTTPServer:
        self._serving.start()
        return self

    @property
    def port(self) -> int:
        return self.server_address[1]

    def process_request(self, request, client_address) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self._lock:
            self._open[request] = thread
        thread.start()

    def shutdown_request(self, request) -> None:
        with self._lock:
            self._open.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        with self._lock:
            # OSError: the client reset or closed the connection, or its TLS handshake failed.
            if isinstance(error, OSError):
                self.client_resets += 1
            elif error is not None:
                self.errors.append(error)

    def close(self) -> None:
        """Stop accepting, end the connections still open, wait for their handlers, and raise
        what a handler failed with. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._serving.is_alive():
            self.shutdown()
        self.server_close()
        with self._lock:
            still_open = dict(self._open)
        for connection in still_open:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)
        for thread in still_open.values():
            thread.join(HANDLER_JOIN_SECONDS)
        if self.errors:
            raise AssertionError(f"the test server's handlers failed: {self.errors!r}") from (
                self.errors[0]
            )

    def __enter__(self) -> LocalHTTPServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
