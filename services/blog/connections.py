"""HTTP(S) connections that resolve the host once, check every address, and connect only to a
checked one: what ``requests`` would otherwise do is look the name up again when it connects,
and a hostile resolver can answer a public address to the check and a private one to the
connection (DNS rebinding).

Only the socket's destination changes: the Host header, the TLS server name (SNI) and the
certificate check still use the host name, because urllib3 reads them from ``host``, which
stays the name. Pools stay keyed by scheme, host and port, so keep-alive still works, and each
new connection in them is checked."""

from __future__ import annotations

import socket
import sys

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
)
from urllib3.util.connection import create_connection

from services.blog.addresses import resolve


class CheckedAddress:
    """Replaces urllib3's ``HTTPConnection._new_conn`` (same errors, same audit event); its
    only change is where the socket goes."""

    allow_private = False

    def _new_conn(self) -> socket.socket:
        try:
            infos = resolve(self._dns_host, self.port, self.allow_private)
        except socket.gaierror as error:
            raise NameResolutionError(self.host, self, error) from error
        except UnicodeError:
            raise LocationParseError(f"'{self._dns_host}', label empty or too long") from None
        failure: Exception = OSError("getaddrinfo returns an empty list")
        for info in infos:
            address = info[4][0]
            try:
                sock = create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as error:
                failure = ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
                )
                failure.__cause__ = error
            except OSError as error:
                failure = NewConnectionError(self, f"Failed to establish a new connection: {error}")
                failure.__cause__ = error
            else:
                sys.audit("http.client.connect", self, self.host, self.port)
                return sock
        raise failure


class _PublicHTTPConnection(CheckedAddress, HTTPConnection):
    pass


class _PublicHTTPSConnection(CheckedAddress, HTTPSConnection):
    pass


class _AnyHTTPConnection(CheckedAddress, HTTPConnection):
    allow_private = True


class _AnyHTTPSConnection(CheckedAddress, HTTPSConnection):
    allow_private = True


def _pool(base: type[HTTPConnectionPool], connection: type) -> type[HTTPConnectionPool]:
    return type(f"Checked{base.__name__}", (base,), {"ConnectionCls": connection})


_POOLS = {
    False: {
        "http": _pool(HTTPConnectionPool, _PublicHTTPConnection),
        "https": _pool(HTTPSConnectionPool, _PublicHTTPSConnection),
    },
    True: {
        "http": _pool(HTTPConnectionPool, _AnyHTTPConnection),
        "https": _pool(HTTPSConnectionPool, _AnyHTTPSConnection),
    },
}


class CheckedAddressAdapter(HTTPAdapter):
    """A transport adapter whose pools make only checked connections. With ``allow_private``
    (tests, intranets) any address is accepted, still resolved only once a connection."""

    def __init__(self, allow_private: bool) -> None:
        # Set before HTTPAdapter.__init__, which builds the pool manager.
        self.allow_private = allow_private
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS[self.allow_private]

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        # Through a proxy the socket goes to the proxy, which resolves the host itself.
        raise requests.exceptions.InvalidProxyURL("feeds are fetched without a proxy")


def new_session(allow_private: bool) -> requests.Session:
    """A session that connects only to checked addresses (see the module's docstring)."""
    session = requests.Session()
    # Settings come from the settings object, not from proxy variables and .netrc in the
    # environment (reading those took a millisecond per fetch).
    session.trust_env = False
    adapter = CheckedAddressAdapter(allow_private)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
