"""InboundForwarding: overwrite (never append) forwarding headers, strip spoofable ones, keep the URI raw."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from inbound import InboundForwarding, client_ip
from mitmproxy import exceptions, http
from mitmproxy.test import taddons

FlowFactory = Callable[..., http.HTTPFlow]

REVERSE = "reverse:http://127.0.0.1:8888"


def run(flow, **options) -> None:
    addon = InboundForwarding()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, **options)
        addon.requestheaders(flow)


@pytest.mark.parametrize(
    "sent",
    [
        [],
        [("X-Forwarded-For", "6.6.6.6")],
        [("X-Forwarded-For", "6.6.6.6, 7.7.7.7")],
        [("X-Forwarded-For", "6.6.6.6"), ("x-forwarded-for", "7.7.7.7")],
    ],
)
def test_x_forwarded_for_is_overwritten_not_appended(make_flow: FlowFactory, sent) -> None:
    flow = make_flow("http://connector.example.com/aps/2/x", headers=sent, mode=REVERSE, peer="203.0.113.7")
    run(flow)
    assert flow.request.headers.get_all("X-Forwarded-For") == ["203.0.113.7"]


@pytest.mark.parametrize(
    ("tls", "sent", "expected"),
    [
        (True, [], "https"),
        (False, [], "http"),
        (False, [("X-Forwarded-Proto", "https")], "http"),
        (True, [("X-Forwarded-Proto", "http"), ("X-Forwarded-Proto", "http")], "https"),
    ],
)
def test_x_forwarded_proto_is_the_scheme_the_client_used(make_flow: FlowFactory, tls, sent, expected) -> None:
    flow = make_flow("http://connector.example.com/x", headers=sent, tls=tls, mode=REVERSE)
    run(flow)
    assert flow.request.headers.get_all("X-Forwarded-Proto") == [expected]


# Spelled out rather than imported, so dropping one from inbound.STRIPPED fails here.
@pytest.mark.parametrize(
    "name",
    "X-Scheme X-Real-Ip X-Forwarded-Host X-Forwarded-Port X-Forwarded-Prefix X-Forwarded-Server "
    "X-Forwarded-Ssl X-Url-Scheme Front-End-Https Forwarded".split(),
)
def test_client_sent_forwarding_headers_are_stripped(make_flow: FlowFactory, name: str) -> None:
    flow = make_flow(
        "http://connector.example.com/x", headers=[(name, "https"), (name.lower(), "6.6.6.6")], mode=REVERSE
    )
    run(flow)
    assert name not in flow.request.headers


@pytest.mark.parametrize(
    "path",
    ["/aps/2/resources/%7Bid%7D/a%2Fb/../c?q=%20a+b&x=%2F", "/connector//double?z=1&a=2", "/%E2%82%AC?x=%zz"],
)
def test_path_and_query_are_never_altered(make_flow: FlowFactory, path: str) -> None:
    flow = make_flow("http://connector.example.com/", mode=REVERSE)
    flow.request.data.path = path.encode()
    run(flow, inbound_controller_uri="https://apsc.example.com:6308/")
    assert flow.request.data.path == path.encode()


def test_controller_uri_injected_over_client_value(make_flow: FlowFactory) -> None:
    flow = make_flow(
        "http://c.example.com/x", headers={"APS-Controller-URI": "https://evil.example.org/"}, mode=REVERSE
    )
    run(flow, inbound_controller_uri="https://apsc.example.com:6308/")
    assert flow.request.headers.get_all("APS-Controller-URI") == ["https://apsc.example.com:6308/"]


def test_controller_uri_passes_through_when_unset(make_flow: FlowFactory) -> None:
    flow = make_flow(
        "http://c.example.com/x", headers={"APS-Controller-URI": "https://apsc.real.example/"}, mode=REVERSE
    )
    run(flow)
    assert flow.request.headers["APS-Controller-URI"] == "https://apsc.real.example/"


@pytest.mark.parametrize("value", ["apsc.example.com", "https://x/?a=1", "ftp://x/"])
def test_bad_controller_uri_is_an_options_error(value: str) -> None:
    addon = InboundForwarding()
    with taddons.context(addon) as tctx:
        with pytest.raises(exceptions.OptionsError, match="inbound_controller_uri"):
            tctx.configure(addon, inbound_controller_uri=value)


def test_forward_proxy_flows_are_left_alone(make_flow: FlowFactory) -> None:
    """Loaded into the egress proxy by mistake, it must not leak the client address to remote hosts."""
    flow = make_flow("http://acronis.example.com/x", headers={"X-Real-Ip": "1.2.3.4"}, mode="regular")
    run(flow, inbound_controller_uri="https://apsc.example.com/")
    assert "X-Forwarded-For" not in flow.request.headers
    assert "APS-Controller-URI" not in flow.request.headers
    assert flow.request.headers["X-Real-Ip"] == "1.2.3.4"


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("fe80::1%eth0", "fe80::1"),
        ("::1", "::1"),
    ],
)
def test_client_ip(peer: str, expected: str) -> None:
    assert client_ip((peer, 1234)) == expected


def test_script_loads_like_mitmdump_s(mitm_dir: Path) -> None:
    with taddons.context() as tctx:
        script = tctx.script(str(mitm_dir / "inbound.py"))
        assert [type(a).__name__ for a in script.addons] == ["InboundForwarding"]
