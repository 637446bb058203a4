"""Which network addresses a feed may be fetched from, and resolving a host name once so that
the addresses checked are the addresses connected to (a second lookup may answer differently:
DNS rebinding)."""

from __future__ import annotations

import ipaddress
import socket

from urllib3.util.connection import allowed_gai_family

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 ranges that tunnel or translate to IPv4 in ways we cannot follow from here: where the
# packets end up depends on relays or an operator's choices, so they are refused outright.
_REFUSED_TRANSITION_RANGES = tuple(
    ipaddress.IPv6Network(network)
    for network in (
        "::/96",  # IPv4-compatible (deprecated by RFC 4291)
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT, RFC 2765)
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): the operator picks where IPv4 sits
        "2001::/32",  # Teredo
        "2002::/16",  # 6to4 (deprecated by RFC 7526)
    )
)
# The well-known NAT64 prefix (RFC 6052): IPv6-only networks with DNS64 hand out
# 64:ff9b::a.b.c.d for every IPv4-only host, so it is judged by the address it carries.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class BlockedAddress(Exception):
    """A host name resolved to an address that is not public."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"{host} resolves to {address}, which is not a public address")
        self.host = host
        self.address = address


def is_public(address: IPAddress) -> bool:
    """True when ``address`` is one the whole internet can reach, and nothing behind us.

    The rule: an IPv6 address that carries an IPv4 address is judged by that IPv4 address
    (IPv4-mapped ``::ffff:0:0/96`` and NAT64 ``64:ff9b::/96``); the transition ranges whose
    destination we cannot tell are refused (IPv4-compatible ``::/96``, IPv4-translated
    ``::ffff:0:0:0/96``, local-use NAT64 ``64:ff9b:1::/48``, Teredo ``2001::/32``, 6to4
    ``2002::/16``); everything else must be ``is_global`` and not multicast. ``is_global`` alone
    is not enough: it calls ``64:ff9b::127.0.0.1``, ``2002:7f00:1::`` and ``::127.0.0.1``
    global, and multicast too. A NAT64 gateway on an operator's own prefix cannot be told
    from a public address; such a network must firewall the fetcher itself.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address in _NAT64:
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if any(address in network for network in _REFUSED_TRANSITION_RANGES):
            return False
    return address.is_global and not address.is_multicast


def resolve(host: str, port: int | None, allow_private: bool) -> list[tuple]:
    """``getaddrinfo`` for a stream socket, once; every answer must be public unless private
    addresses are allowed (one private answer refuses the host: a client may try them all).

    Raises ``BlockedAddress``, or what ``getaddrinfo`` raises (``socket.gaierror``, and
    ``UnicodeError`` for a name IDNA cannot encode)."""
    infos = socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)
    if not allow_private:
        for info in infos:
            address = info[4][0]
            if not is_public(ipaddress.ip_address(address)):
                raise BlockedAddress(host, address)
    return infos
