"""A real WebSub hub on 127.0.0.1 for the blog's tests, following the W3C Recommendation:
subscription requests (§5.1) answered 202, then the subscriber's intent checked with a GET
on its callback carrying a random challenge (§5.3), which must come back verbatim; content
distribution (§7) as a POST of the feed to every verified callback of its topic, signed with
``X-Hub-Signature: sha256=HMAC(secret, body)`` (§8), with ``Link`` headers naming the hub
and the topic."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

import requests

from tests.local_http_server import LocalHTTPServer


@dataclass
class Subscription:
    callback: str
    topic: str
    secret: str | None
    lease_seconds: int


@dataclass
class Check:
    """One check of intent the hub made, and what the callback answered."""

    mode: str
    callback: str
    topic: str
    status: int
    echoed: bool


@dataclass
class Hub:
    lease_seconds: int = 3600
    subscriptions: dict[tuple[str, str], Subscription] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {
                    name: values[0]
                    for name, values in parse_qs(self.rfile.read(length).decode()).items()
                }
                problem = hub._refusal(form)
                status = 400 if problem else 202
                body = (problem or "").encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if not problem:
                    threading.Thread(target=hub._check_intent, args=(form,), daemon=True).start()

        self.httpd = LocalHTTPServer(Handler)

    def __enter__(self) -> Hub:
        self.httpd.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.httpd.close()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def _refusal(self, form: dict[str, str]) -> str | None:
        with self.lock:
            self.requests.append(form)
        if form.get("hub.mode") not in ("subscribe", "unsubscribe"):
            return "hub.mode must be subscribe or unsubscribe"
        if not form.get("hub.topic") or not form.get("hub.callback", "").startswith("http"):
            return "hub.topic and hub.callback are required"
        if len(form.get("hub.secret", "")) >= 200:
            return "hub.secret must be under 200 bytes"
        return None

    def _check_intent(self, form: dict[str, str]) -> None:
        mode, topic, callback = form["hub.mode"], form["hub.topic"], form["hub.callback"]
        challenge = secrets.token_urlsafe(24)
        query = {"hub.mode": mode, "hub.topic": topic, "hub.challenge": challenge}
        if mode == "subscribe":
            query["hub.lease_seconds"] = str(self.lease_seconds)
        try:
            answer = requests.get(callback, params=query, timeout=10)
            status, echoed = answer.status_code, answer.text == challenge
        except requests.RequestException:
            status, echoed = 0, False
        with self.lock:
            self.checks.append(Check(mode, callback, topic, status, echoed))
            if not (200 <= status < 300 and echoed):
                return  # §5.3.1: the subscriber did not confirm; nothing changes
            if mode == "subscribe":
                self.subscriptions[(topic, callback)] = Subscription(
                    callback, topic, form.get("hub.secret"), self.lease_seconds
                )
            else:
                self.subscriptions.pop((topic, callback), None)

    def subscribers(self, topic: str) -> list[Subscription]:
        with self.lock:
            return [sub for (sub_topic, _), sub in self.subscriptions.items() if sub_topic == topic]

    def publish(
        self, topic: str, body: bytes, content_type: str = "application/rss+xml"
    ) -> list[int]:
        """Distribute ``body`` to every verified subscriber of ``topic``: their answers."""
        return [
            deliver(sub.callback, body, sign(sub.secret, body), content_type, self.url, topic)
            for sub in self.subscribers(topic)
        ]


def sign(secret: str | None, body: bytes, method: str = "sha256") -> str | None:
    if secret is None:
        return None
    return f"{method}={hmac.new(secret.encode(), body, getattr(hashlib, method)).hexdigest()}"


def deliver(
    callback: str,
    body,
    signature: str | None,
    content_type: str = "application/rss+xml",
    hub_url: str | None = None,
    topic: str | None = None,
) -> int:
    headers = {"Content-Type": content_type}
    if signature is not None:
        headers["X-Hub-Signature"] = signature
    if hub_url and topic:
        headers["Link"] = f'<{hub_url}>; rel="hub", <{topic}>; rel="self"'
    return requests.post(callback, data=body, headers=headers, timeout=10).status_code
