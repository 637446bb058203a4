"""Fetching a feed politely and safely: conditional GET, bounded in time and size, redirects
followed by hand so every hop is checked, and no request to private addresses unless the
deployment allows it (a feed URL is text a stranger may have typed: server-side request
forgery is the risk)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from services.blog.addresses import BlockedAddress, resolve
from services.blog.connections import new_session

USER_AGENT = "SisterCitiesFeedFetcher/0.1 (+https://github.com/sister-cities; feed syndication)"
MAX_BYTES = 10 * 1024 * 1024
CONNECT_TIMEOUT, READ_TIMEOUT = 10.0, 20.0
# A server that trickles one byte at a time never trips the read timeout: cap the whole fetch.
TOTAL_SECONDS = 60.0
MAX_REDIRECTS = 5
CHUNK = 64 * 1024


class FetchError(Exception):
    """Why a feed could not be fetched; ``code`` is stable, ``message`` is for staff."""

    def __init__(self, code: str, message: str, status: int | None = None, retry_after=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after


@dataclass
class FetchResult:
    url: str
    status: int
    body: bytes | None
    etag: str | None = None
    last_modified: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def not_modified(self) -> bool:
        return self.status == 304


_local = threading.local()


def _thread_session(allow_private: bool) -> requests.Session:
    # One session per thread: connections to a host are kept alive from one fetch to the
    # next (most feeds live on medium.com), and a session is never shared between threads.
    # One per policy too, so a connection let through to a private address is never reused
    # by a fetch that forbids them.
    if not hasattr(_local, "sessions"):
        _local.sessions = {}
    sessions = _local.sessions
    if allow_private not in sessions:
        sessions[allow_private] = new_session(allow_private)
    return sessions[allow_private]


def check_url(url: str, allow_private: bool) -> None:
    """Refuse before any connection what cannot be fetched: another scheme, a host name that
    does not resolve or resolves to a private address. The connection checks the address
    again when it resolves the name itself (services.blog.connections): this check alone
    would leave a second lookup unchecked."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError("bad_url", "only http and https feed addresses can be fetched")
    if allow_private:
        return
    try:
        resolve(parts.hostname, parts.port, allow_private)
    except socket.gaierror as error:
        raise FetchError("dns", f"the feed's host name does not resolve ({error})") from None
    except UnicodeError:
        raise FetchError("bad_url", "the feed's host name is not a valid name") from None
    except BlockedAddress:
        raise _blocked() from None


def _blocked() -> FetchError:
    return FetchError("blocked_address", "the feed's host resolves to a private or local address")


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds or as an HTTP date (RFC 9110 allows both); None if neither."""
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # an HTTP date is GMT; a zone-less one is read as such
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def fetch(
    url: str,
    etag: str | None = None,
    last_modified: str | None = None,
    *,
    allow_private: bool = False,
    max_bytes: int = MAX_BYTES,
    timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
    total_seconds: float = TOTAL_SECONDS,
    session: requests.Session | None = None,
) -> FetchResult:
    """GET ``url`` (conditionally). Raises ``FetchError`` for anything but 200 or 304.

    A ``session`` given must come from ``connections.new_session`` with the same
    ``allow_private``: another would connect to whatever a second lookup answers."""
    session = session or _thread_session(allow_private)
    deadline = time.monotonic() + total_seconds
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    for _hop in range(MAX_REDIRECTS + 1):
        check_url(url, allow_private)
        try:
            response = session.get(
                url, headers=headers, timeout=timeout, stream=True, allow_redirects=False
            )
        except BlockedAddress:
            raise _blocked() from None
        except requests.Timeout:
            raise FetchError("timeout", "the feed's server did not answer in time") from None
        except requests.RequestException as error:
            raise FetchError(
                "connection", f"could not connect ({error.__class__.__name__})"
            ) from None
        with response:
            if response.is_redirect and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                continue
            if response.status_code == 304:
                return FetchResult(url, 304, None, etag, last_modified, dict(response.headers))
            if response.headers.get("cf-mitigated", "").lower() == "challenge":
                raise FetchError(
                    "challenge",
                    "the server answered with a bot challenge (Cloudflare) instead of the feed",
                    status=response.status_code,
                )
            if response.status_code != 200:
                raise FetchError(
                    "http_error",
                    f"the feed's server answered {response.status_code}",
                    status=response.status_code,
                    retry_after=retry_after_seconds(response.headers.get("retry-after")),
                )
            body = _read_capped(response, max_bytes, deadline)
            return FetchResult(
                url,
                200,
                body,
                response.headers.get("etag"),
                response.headers.get("last-modified"),
                dict(response.headers),
            )
    raise FetchError("too_many_redirects", f"more than {MAX_REDIRECTS} redirects")


def _read_capped(response: requests.Response, max_bytes: int, deadline: float) -> bytes:
    chunks, size = [], 0
    try:
        # read1 returns whatever one read brings (decoded), so a trickling server is noticed
        # between reads instead of after a whole chunk.
        while chunk := response.raw.read1(CHUNK, decode_content=True):
            size += len(chunk)
            if size > max_bytes:
                raise FetchError("too_large", f"the feed is larger than {max_bytes:,} bytes")
            if time.monotonic() > deadline:
                raise FetchError("timeout", "the feed took too long to arrive")
            chunks.append(chunk)
    except (urllib3.exceptions.ReadTimeoutError, requests.Timeout, TimeoutError):
        raise FetchError("timeout", "the feed's server stopped sending (timed out)") from None
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
        raise FetchError(
            "truncated", f"the feed arrived incomplete ({error.__class__.__name__})"
        ) from None
    return b"".join(chunks)


HUB_TIMEOUT = (5.0, 10.0)


def post_form(url: str, fields: dict[str, str], *, allow_private: bool = False) -> tuple[int, str]:
    """POST ``fields`` form-encoded to ``url`` (a WebSub hub: an address a feed named, so
    checked as a feed's is); no redirect is followed. Returns the status and the first
    kilobyte of the answer, for staff; raises ``FetchError`` when no answer came."""
    check_url(url, allow_private)
    session = _thread_session(allow_private)
    headers = {"User-Agent": USER_AGENT}
    try:
        response = session.post(
            url,
            data=fields,
            headers=headers,
            timeout=HUB_TIMEOUT,
            stream=True,
            allow_redirects=False,
        )
    except BlockedAddress:
        raise _blocked() from None
    except requests.Timeout:
        raise FetchError("timeout", "the hub did not answer in time") from None
    except requests.RequestException as error:
        raise FetchError("connection", f"could not connect ({error.__class__.__name__})") from None
    with response:
        try:
            head = response.raw.read(1024, decode_content=True) or b""
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
            head = b""
    return response.status_code, head.decode("utf-8", "replace")
