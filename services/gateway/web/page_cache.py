"""Whole public pages, rendered once and served to every anonymous visitor until a change
moves a generation the page was made from (``cache.py`` keeps them beside the answers).

A route declares it, with the query parameters its page reads:
``@cached_page(query=("sort",))``. A page is cached per variant: its path, those parameters,
and the site's release (its templates and files); nothing else changes what a public page
shows (one language, nothing about the visitor: the forms on these pages carry no CSRF token,
their endpoints are ``same_origin_form``s). The generations a page depends on are those of the
cached calls that made it (``calls.py`` tells this module); a page that made an uncached call,
met an error (a section left out) or touched the session is served but not kept.

Only anonymous visitors get or fill the cache: a request with credentials, or whose session
holds anything but a CSRF token (signed-in staff, a subscriber's link remembered, a message
kept for the next page), is rendered for itself as before. A first visit opens no session.

``KeptPages`` answers the commonest request of all, a visitor without a cookie asking again
for a page this process keeps, before Flask sees it (see its docstring).

A kept page is the same bytes for everyone: ``public, no-cache`` with a strong ETag, so a
browser or a shared cache asks again each time and a revisit is a 304 until the page changes.
``Vary: Cookie`` keeps a shared cache from giving it to a signed-in member.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from flask import Flask, Response, current_app, g, request, session

from services.gateway.cache import LOCAL_PAGES, ResponseCache
from services.gateway.web.observability import REQUEST_ID_HEADER, Metrics, request_id

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"
RELEASE = "sistercities_page_release"  # its key in app.extensions
CSRF_FIELD = "csrf_token"  # Flask-WTF's key in the session
PUBLIC = "public, no-cache"
# In the WSGI environ of a request answered with a kept page: (its key, the page as stored,
# its route), which ``KeptPages`` learns from.
KEPT = "sistercities.kept_page"
# A response's own headers, not its page's: each answer from memory gets its own.
PER_RESPONSE = frozenset({"x-request-id", "date"})


@dataclass
class _Filling:
    """What the page being rendered was made from."""

    generations: dict[str, int] = field(default_factory=dict)
    storable: bool = True


def made_from(generation: str, value: int | None) -> None:
    """A cached call's answer went into the page being rendered (``value``: its generation's,
    None when it was not cached)."""
    filling = g.get("page_filling")
    if filling is None:
        return
    if value is None:
        filling.storable = False
    else:
        # Two answers of one generation made at different values: the older one decides.
        known = filling.generations.get(generation)
        filling.generations[generation] = value if known is None else min(known, value)


def not_storable() -> None:
    """The page being rendered holds something no generation covers: serve it, keep it not."""
    filling = g.get("page_filling")
    if filling is not None:
        filling.storable = False


def cached_page(query: Iterable[str] = ()) -> Callable[[Callable], Callable]:
    """For a public page's GET route; ``query``: every query parameter the view reads."""
    names = tuple(query)

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def page(*args, **kwargs):
            cache = current_app.extensions["sistercities"].cache
            if not cache.enabled or not _anonymous():
                return view(*args, **kwargs)
            key = _variant(names)
            stored = cache.page(key)
            if stored is not None:
                return _serve(key, stored)
            filling = g.page_filling = _Filling()
            try:
                response = current_app.make_response(view(*args, **kwargs))
            finally:
                g.pop("page_filling", None)
            if not _storable(response, filling):
                return response
            stored = _Page.made(response.get_data(as_text=True)).dumps()
            cache.store_page(key, filling.generations, stored)
            return _serve(key, stored)

        return page

    return decorate


def install_page_cache(app: Flask, cache: ResponseCache, metrics: Metrics) -> None:
    app.extensions[RELEASE] = _release(app)
    if cache.enabled:
        app.wsgi_app = KeptPages(app.wsgi_app, cache, metrics)


def _anonymous() -> bool:
    # Marks the session read: the answer varies with the cookie (``Vary: Cookie``).
    session.accessed = True
    return "HTTP_AUTHORIZATION" not in request.environ and set(session) <= {CSRF_FIELD}


def _variant(names: tuple[str, ...]) -> str:
    args = request.args
    query = urlencode([(name, value) for name in names for value in args.getlist(name)])
    return f"{current_app.extensions[RELEASE]}:{request.path}?{query}"


def _storable(response: Response, filling: _Filling) -> bool:
    return (
        filling.storable
        and response.status_code == 200
        and response.mimetype == "text/html"
        and not response.direct_passthrough
        and "Set-Cookie" not in response.headers
        and not session.modified
    )


@dataclass
class _Page:
    etag: str
    body: str

    @classmethod
    def made(cls, body: str) -> _Page:
        return cls(hashlib.sha1(body.encode(), usedforsecurity=False).hexdigest(), body)

    def dumps(self) -> str:
        return f"{self.etag}\n{self.body}"


@functools.lru_cache(maxsize=256)
def _parsed(text: str) -> _Page:
    """A kept page as stored. A page served from memory is the same string object every
    time, and a string keeps its hash: each is parsed once, not on every request."""
    etag, _, body = text.partition("\n")
    return _Page(etag, body)


def _serve(key: str, stored: str) -> Response:
    page = _parsed(stored)
    # A route with a rate limit counts every request: only Flask may answer it.
    if getattr(current_app.view_functions[request.endpoint], "rate_limit", None) is None:
        request.environ[KEPT] = (key, stored, request.url_rule.rule)
    response = current_app.response_class(page.body, mimetype="text/html")
    response.headers["Cache-Control"] = PUBLIC
    response.set_etag(page.etag)
    if "HTTP_IF_NONE_MATCH" in request.environ:
        return response.make_conditional(request)
    return response


def _release(app: Flask) -> str:
    """The templates and site files this process renders with: a page cached by another
    release is another variant."""
    digest = hashlib.sha256()
    for path in sorted(TEMPLATES_DIR.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(TEMPLATES_DIR).as_posix().encode())
            digest.update(path.read_bytes())
    for name, fingerprint in sorted(app.extensions["asset_digests"].items()):
        digest.update(f"{name}={fingerprint}".encode())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class _Known:
    """A kept page as Flask last answered it at one address."""

    key: str
    stored: str  # the page as the cache keeps it: current while the cache holds this object
    route: str
    status: str
    headers: list[tuple[str, str]]
    body: bytes


class KeptPages:
    """WSGI middleware around the gateway: a kept page this process served to a GET with no
    cookie and no credentials is served again at the same address (path and query string as
    sent) from memory, before Flask sees the request, for as long as the cache holds that
    page unchanged (``ResponseCache.kept_page``: no round trip). The answer is what Flask
    gave: its status, headers and bytes, with a request id of its own, counted and logged
    the same. Flask's request machinery and hooks were most of a kept page's cost, and none
    of them reads anything such a request carries: a page with a rate limit, a cookie,
    credentials, a conditional request or any other method still goes through Flask."""

    def __init__(self, wsgi_app: Callable, cache: ResponseCache, metrics: Metrics) -> None:
        self.wsgi_app = wsgi_app
        self.cache = cache
        self.metrics = metrics
        self._known: dict[tuple[str, str], _Known] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if (
            environ["REQUEST_METHOD"] != "GET"
            or "HTTP_COOKIE" in environ
            or "HTTP_AUTHORIZATION" in environ
            or "HTTP_IF_NONE_MATCH" in environ
        ):
            return self.wsgi_app(environ, start_response)
        address = (environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""))
        known = self._known.get(address)
        if known is not None and self.cache.kept_page(known.key) is known.stored:
            return self._again(known, environ, start_response)
        return self.wsgi_app(environ, self._learning(address, environ, start_response))

    def _again(self, known: _Known, environ: dict, start_response: Callable) -> list[bytes]:
        started = time.perf_counter()
        rid = request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        start_response(known.status, [*known.headers, (REQUEST_ID_HEADER, rid)])
        path = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")
        seconds = time.perf_counter() - started
        self.metrics.answered("GET", known.route, path, 200, seconds, request_id=rid)
        return [known.body]

    def _learning(self, address: tuple[str, str], environ: dict, start_response: Callable):
        def start(status: str, headers: list[tuple[str, str]], exc_info=None):
            kept = environ.get(KEPT)
            if kept is not None and exc_info is None and status.startswith("200 "):
                self._learn(address, kept, status, headers)
            return start_response(status, headers, exc_info)

        return start

    def _learn(self, address, kept: tuple[str, str, str], status: str, headers) -> None:
        key, stored, route = kept
        body = _parsed(stored).body.encode()
        names = {name.lower(): value for name, value in headers}
        if "set-cookie" in names or names.get("content-length") != str(len(body)):
            return
        own = [(name, value) for name, value in headers if name.lower() not in PER_RESPONSE]
        with self._lock:
            self._known.pop(address, None)
            self._known[address] = _Known(key, stored, route, status, own, body)
            while len(self._known) > LOCAL_PAGES:
                del self._known[next(iter(self._known))]
