"""Which addresses a feed may be fetched from: a table of addresses that must be refused (each
reaches something behind us, or might) and addresses that must stay allowed. Literal addresses
need no DNS, so the fetcher's own check is asked directly."""

import pytest

from services.blog.fetcher import FetchError, check_url

REFUSED = {
    "127.0.0.1": "loopback",
    "10.1.2.3": "private",
    "169.254.169.254": "link-local (cloud metadata)",
    "100.64.0.1": "shared address space (carrier-grade NAT)",
    "0.0.0.0": "this host",
    "224.0.0.1": "IPv4 multicast, which is_global calls global",
    "::1": "IPv6 loopback",
    "fe80::1": "IPv6 link-local",
    "fc00::1": "unique local",
    "ff0e::1": "IPv6 multicast, which is_global calls global",
    "::ffff:127.0.0.1": "IPv4-mapped loopback",
    "::ffff:10.0.0.1": "IPv4-mapped private",
    "64:ff9b::7f00:1": "NAT64 of 127.0.0.1",
    "64:ff9b::a00:1": "NAT64 of 10.0.0.1",
    "64:ff9b::a9fe:a9fe": "NAT64 of 169.254.169.254",
    "64:ff9b:1::101:101": "local-use NAT64 (where IPv4 sits is the operator's choice)",
    "::7f00:1": "IPv4-compatible ::127.0.0.1",
    "::101:101": "IPv4-compatible ::1.1.1.1 (deprecated, refused whatever it carries)",
    "::ffff:0:7f00:1": "IPv4-translated 127.0.0.1",
    "2002:7f00:1::1": "6to4 of 127.0.0.1",
    "2002:101:101::1": "6to4 of 1.1.1.1 (deprecated, refused whatever it carries)",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo",
    "2001:db8::1": "documentation",
}

ALLOWED = {
    "1.1.1.1": "public IPv4",
    "93.184.215.14": "public IPv4",
    "2606:4700:4700::1111": "public IPv6",
    "2001:4860:4860::8888": "public IPv6 (outside Teredo's 2001::/32)",
    "::ffff:1.1.1.1": "IPv4-mapped public",
    "64:ff9b::101:101": "NAT64 of 1.1.1.1 (DNS64 networks hand these out for every IPv4 host)",
}


def _url(address: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:8080/feed"


@pytest.mark.parametrize("address", REFUSED, ids=[f"{a} {why}" for a, why in REFUSED.items()])
def test_an_address_that_reaches_inside_is_refused(address):
    with pytest.raises(FetchError) as caught:
        check_url(_url(address), allow_private=False)
    assert caught.value.code == "blocked_address"


@pytest.mark.parametrize("address", ALLOWED, ids=[f"{a} {why}" for a, why in ALLOWED.items()])
def test_a_public_address_is_allowed(address):
    check_url(_url(address), allow_private=False)


@pytest.mark.parametrize("address", REFUSED)
def test_any_address_is_allowed_where_private_feeds_are(address):
    check_url(_url(address), allow_private=True)


def test_a_host_name_that_idna_cannot_encode_is_a_bad_url_not_a_crash():
    with pytest.raises(FetchError) as caught:
        check_url("http://feeds..example/feed", allow_private=False)
    assert caught.value.code == "bad_url"
