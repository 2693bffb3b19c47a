"""probe_proxy: a TCP connect to the configured proxy, a short timeout, and nothing but a word out."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest

from proxy.probe import NOT_CONFIGURED, OK, UNREACHABLE, probe_proxy, proxy_address
from proxy.session import ProxySettings


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nobody listens once it is closed


@pytest.mark.parametrize(
    ("url", "address"),
    [
        (None, None),
        ("http://proxy.internal:3128", ("proxy.internal", 3128)),
        ("http://user@proxy.internal:3128", ("proxy.internal", 3128)),
        ("http://proxy.internal", ("proxy.internal", 80)),
        ("https://proxy.internal", ("proxy.internal", 443)),
        ("http://[::1]:8080", ("::1", 8080)),
    ],
)
def test_proxy_address(url: str | None, address: tuple[str, int] | None) -> None:
    assert proxy_address(ProxySettings(url=url)) == address


def test_not_configured() -> None:
    assert probe_proxy(ProxySettings(), timeout=1) == NOT_CONFIGURED


def test_a_listening_proxy_is_ok(listening: int) -> None:
    assert probe_proxy(ProxySettings(url=f"http://127.0.0.1:{listening}"), timeout=1) == OK


def test_a_closed_port_is_unreachable_and_logged_without_details(caplog: pytest.LogCaptureFixture) -> None:
    port = closed_port()
    with caplog.at_level(logging.WARNING, logger="proxy.probe"):
        assert probe_proxy(ProxySettings(url=f"http://user@127.0.0.1:{port}"), timeout=1) == UNREACHABLE
    [record] = caplog.records
    assert record.getMessage() == "health check: outbound proxy unreachable (ConnectionRefusedError)"


def test_a_silent_host_costs_at_most_the_timeout() -> None:
    # 192.0.2.0/24 (TEST-NET-1, RFC 5737) is never routed: the SYN goes unanswered or is refused at once.
    started = time.monotonic()
    assert probe_proxy(ProxySettings(url="http://192.0.2.1:3128"), timeout=0.3) == UNREACHABLE
    assert time.monotonic() - started < 1.5
