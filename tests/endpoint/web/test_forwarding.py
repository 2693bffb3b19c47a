"""client_address: forwarding headers count only from trusted peers, and only up to the first stranger."""

from __future__ import annotations

import ipaddress

import pytest
from tornado.httputil import HTTPHeaders

from endpoint.web.forwarding import client_address

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))


def headers(*forwarded_for: str, **others: str) -> HTTPHeaders:
    result = HTTPHeaders()
    for value in forwarded_for:
        result.add("X-Forwarded-For", value)
    for name, value in others.items():
        result.add(name.replace("_", "-"), value)
    return result


@pytest.mark.parametrize(
    ("peer", "hdrs", "trusted", "expected"),
    [
        pytest.param("203.0.113.9", headers("198.51.100.1"), PROXIES, "203.0.113.9", id="untrusted-peer"),
        pytest.param("10.0.0.2", headers("198.51.100.1"), (), "10.0.0.2", id="no-trusted-proxies"),
        pytest.param("10.0.0.2", headers(), PROXIES, "10.0.0.2", id="trusted-peer-no-header"),
        pytest.param("10.0.0.2", headers("198.51.100.1"), PROXIES, "198.51.100.1", id="one-hop"),
        pytest.param(
            "10.0.0.2",
            headers("192.0.2.66, 198.51.100.1, 10.0.0.3"),
            PROXIES,
            "198.51.100.1",
            id="rightmost-untrusted-hop",  # 192.0.2.66 was written by the client itself: spoofable
        ),
        pytest.param(
            "10.0.0.2",
            headers("192.0.2.66", "198.51.100.1,10.0.0.3"),
            PROXIES,
            "198.51.100.1",
            id="multiple-header-lines",
        ),
        pytest.param("10.0.0.2", headers("198.51.100.1, garbage"), PROXIES, "10.0.0.2", id="garbled-hop"),
        pytest.param("10.0.0.2", headers("198.51.100.1,"), PROXIES, "10.0.0.2", id="empty-hop"),
        pytest.param("10.0.0.2", headers("198.51.100.1:4431"), PROXIES, "10.0.0.2", id="hop-with-port"),
        pytest.param("10.0.0.2", headers("10.0.0.9, 10.0.0.3"), PROXIES, "10.0.0.9", id="all-trusted-chain"),
        pytest.param("::1", headers("2001:db8::7"), PROXIES, "2001:db8::7", id="ipv6"),
        pytest.param("::1", headers("2001:db8::7, ::1"), PROXIES, "2001:db8::7", id="ipv6-chain"),
        pytest.param("::1", headers("[2001:db8::7]"), PROXIES, "::1", id="ipv6-bracketed-is-garbled"),
        pytest.param(
            "2001:db8::5", headers("198.51.100.1"), PROXIES, "2001:db8::5", id="ipv6-untrusted-peer"
        ),
        pytest.param(
            "10.0.0.2", headers(X_Real_Ip="198.51.100.1"), PROXIES, "10.0.0.2", id="x-real-ip-ignored"
        ),
        pytest.param("unix-socket", headers("198.51.100.1"), PROXIES, "unix-socket", id="non-ip-peer"),
    ],
)
def test_client_address(
    peer: str, hdrs: HTTPHeaders, trusted: tuple[ipaddress.IPv4Network, ...], expected: str
) -> None:
    assert client_address(peer, hdrs, trusted) == expected
