"""A real HTTP server on 127.0.0.1 that plays "Medium" (and worse servers) for the blog's tests."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.local_http_server import LocalHTTPServer


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/xml; charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    # For misbehaving servers: takes the handler and writes the whole answer itself.
    custom: Callable[[BaseHTTPRequestHandler], None] | None = None


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.not_modified: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go as two writes

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                server.hits[path] += 1
                route = server.routes.get(path)
                if route is None:
                    self._answer(404, b"not found", "text/plain", {})
                    return
                if route.custom is not None:
                    route.custom(self)
                    return
                if route.etag and self.headers.get("If-None-Match") == route.etag:
                    server.not_modified[path] += 1
                    self._answer(304, b"", None, {"ETag": route.etag})
                    return
                headers = dict(route.headers)
                if route.etag:
                    headers["ETag"] = route.etag
                self._answer(route.status, route.body, route.content_type, headers)

            def _answer(self, status, body, content_type, headers) -> None:
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = LocalHTTPServer(Handler)

    def __enter__(self) -> FeedServer:
        self.httpd.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.close()

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, path: str, body: bytes | str = b"", **options) -> str:
        if isinstance(body, str):
            body = body.encode()
        self.routes[path] = Route(body=body, **options)
        return self.url(path)


def hang(seconds: float) -> Callable[[BaseHTTPRequestHandler], None]:
    """Headers, then nothing for ``seconds``."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.end_headers()
        handler.wfile.flush()
        time.sleep(seconds)

    return answer


def cut_short(body: bytes) -> Callable[[BaseHTTPRequestHandler], None]:
    """Promises more bytes than it sends, then closes the connection."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.send_header("Content-Length", str(len(body) * 2))
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
        handler.close_connection = True

    return answer
