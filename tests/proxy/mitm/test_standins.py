"""StandIns: requests for configured hosts go to simulators with path, query and Host kept exactly."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from mitmproxy import exceptions, http
from mitmproxy.proxy import server_hooks
from mitmproxy.test import taddons, tflow
from specs import META_ANSWERED_BY, META_ORIGIN, META_STANDIN
from standins import StandIns

FlowFactory = Callable[..., http.HTTPFlow]
ROUTES = ["acronis.example.com=http://127.0.0.1:9101", "apsc.example.com:6308=http://127.0.0.1:9102"]


@pytest.fixture
def addon() -> Iterator[StandIns]:
    addon = StandIns()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, standins=ROUTES)
        yield addon


@pytest.mark.parametrize(
    ("url", "tls", "target"),
    [
        ("http://acronis.example.com/api/2/x?a=%2F&b=+1&c", False, ("http", "127.0.0.1", 9101)),
        ("https://acronis.example.com/api/2/x?a=%2F&b=+1&c", True, ("http", "127.0.0.1", 9101)),
        ("https://ACRONIS.example.com:8443/api/2/x?a=%2F&b=+1&c", True, ("http", "127.0.0.1", 9101)),
        ("https://apsc.example.com:6308/aps/2/resources/%7Bid%7D?x=1", True, ("http", "127.0.0.1", 9102)),
    ],
)
def test_request_is_routed_with_path_and_host_kept(
    addon: StandIns, make_flow: FlowFactory, url: str, tls: bool, target: tuple[str, str, int]
) -> None:
    flow = make_flow(url, tls=tls)
    before = (flow.request.scheme, flow.request.host, flow.request.port)
    raw_path, host_header = flow.request.data.path, flow.request.headers["Host"]
    addon.request(flow)
    req = flow.request
    assert (req.scheme, req.host, req.port) == target
    assert req.data.path == raw_path
    assert req.headers.get_all("Host") == [host_header]
    assert flow.metadata[META_ORIGIN] == before
    assert flow.metadata[META_STANDIN] == f"http://{target[1]}:{target[2]}"
    assert flow.metadata[META_ANSWERED_BY] == "stand-in"


@pytest.mark.parametrize(
    "url",
    [
        "https://apsc.example.com:443/aps/2/",
        "https://other.example.com/api",
        "http://eu.acronis.example.com/x",
    ],
)
def test_other_hosts_and_ports_are_left_alone(addon: StandIns, make_flow: FlowFactory, url: str) -> None:
    flow = make_flow(url)
    before = flow.request.url
    addon.request(flow)
    assert flow.request.url == before
    assert META_STANDIN not in flow.metadata


def test_answered_flow_is_not_routed(addon: StandIns, make_flow: FlowFactory) -> None:
    flow = make_flow("http://acronis.example.com/x")
    flow.response = http.Response.make(503)
    addon.request(flow)
    assert flow.request.host == "acronis.example.com"


def test_connect_to_standin_is_accepted_by_the_proxy(addon: StandIns, make_flow: FlowFactory) -> None:
    flow = make_flow("acronis.example.com:443", method="CONNECT")
    addon.http_connect(flow)
    assert flow.response and flow.response.status_code == 200
    assert (flow.request.host, flow.request.port) == (
        "acronis.example.com",
        443,
    )  # target kept for the tunnel
    assert flow.metadata[META_STANDIN] == "http://127.0.0.1:9101"


def test_connect_elsewhere_untouched(addon: StandIns, make_flow: FlowFactory) -> None:
    flow = make_flow("other.example.com:443", method="CONNECT")
    addon.http_connect(flow)
    assert flow.response is None and not flow.metadata


def test_connect_already_answered_keeps_answer(addon: StandIns, make_flow: FlowFactory) -> None:
    flow = make_flow("acronis.example.com:443", method="CONNECT")
    flow.response = http.Response.make(403)
    flow.metadata[META_ANSWERED_BY] = "blocked"
    addon.http_connect(flow)
    assert flow.response.status_code == 403
    assert flow.metadata[META_ANSWERED_BY] == "blocked"


@pytest.mark.parametrize(
    ("address", "killed"),
    [
        (("acronis.example.com", 443), True),
        (("apsc.example.com", 6308), True),
        (("apsc.example.com", 443), False),
        (("127.0.0.1", 9101), False),
    ],
)
def test_real_host_of_a_standin_is_never_connected(addon: StandIns, address, killed: bool) -> None:
    server = tflow.tserver_conn()
    server.address = address
    addon.server_connect(server_hooks.ServerConnectionHookData(server=server, client=tflow.tclient_conn()))
    assert bool(server.error) is killed


@pytest.mark.parametrize("spec", ["acronis.example.com", "*.example.com=http://127.0.0.1:1", "a=http://x/p"])
def test_bad_route_is_an_options_error(spec: str) -> None:
    addon = StandIns()
    with taddons.context(addon) as tctx:
        with pytest.raises(exceptions.OptionsError, match="standins"):
            tctx.configure(addon, standins=[spec])


def test_routes_replaced_on_reconfigure(make_flow: FlowFactory) -> None:
    addon = StandIns()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, standins=ROUTES)
        tctx.configure(addon, standins=[])
        flow = make_flow("http://acronis.example.com/x")
        addon.request(flow)
        assert flow.request.host == "acronis.example.com"


def test_script_loads_like_mitmdump_s(mitm_dir: Path) -> None:
    with taddons.context() as tctx:
        script = tctx.script(str(mitm_dir / "standins.py"))
        assert [type(a).__name__ for a in script.addons] == ["StandIns"]


# The local stack in gateway mode: the data center, the controller and the identity provider (its JWKS).
STACK_ROUTES = [
    "eu8-cloud.acronis.com:443=http://127.0.0.1:9101",
    "controller.example.net:6308=http://127.0.0.1:9102",
    "acronis.cloud:443=http://127.0.0.1:9101",
]


@pytest.mark.parametrize(
    ("url", "routed"),
    [
        ("https://acronis.cloud/api/idp/v1/keys", True),  # the JWKS the endpoint fetches
        ("https://ACRONIS.cloud./api/idp/v1/keys", True),
        ("https://eu8-cloud.acronis.com/api/idp/v1/keys", True),
        ("https://eu8.acronis.cloud/api/idp/v1/keys", False),  # another DC form is not the identity provider
        ("https://acronis.cloud.attacker.example/api/idp/v1/keys", False),
        ("https://acronis.cloud:8443/api/idp/v1/keys", False),
    ],
)
def test_the_identity_provider_is_an_exact_stand_in(make_flow: FlowFactory, url: str, routed: bool) -> None:
    addon = StandIns()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, standins=STACK_ROUTES)
        flow = make_flow(url, tls=True)
        raw_path = flow.request.data.path
        addon.request(flow)
        assert (flow.request.host == "127.0.0.1") is routed
        assert flow.request.data.path == raw_path
        if routed:  # the audit line and the allowlist see the name the endpoint asked for
            assert flow.metadata[META_ORIGIN][1].rstrip(".") == urlsplit(url).hostname.rstrip(".")
            assert flow.request.headers["Host"] == urlsplit(url).netloc


@pytest.mark.parametrize("hook", ["response", "error"])
def test_an_answered_flow_shows_the_host_the_client_asked_for(
    addon: StandIns, make_flow: FlowFactory, hook: str
) -> None:
    """mitmweb's flow list and flow files name the real destination, not the simulator's address."""
    url = "https://acronis.example.com/api/2/x?a=%2F"
    flow = make_flow(url, tls=True)
    raw_path = flow.request.data.path
    addon.request(flow)
    assert (flow.request.host, flow.request.port) == ("127.0.0.1", 9101)  # routed while in flight
    if hook == "response":
        flow.response = http.Response.make(200, b"{}")
        addon.response(flow)
    else:
        flow.error = tflow.terr("Connection refused")
        addon.error(flow)
    req = flow.request
    assert (req.scheme, req.host, req.port) == ("https", "acronis.example.com", 443)
    assert req.pretty_url == url and req.pretty_host == "acronis.example.com"
    assert req.headers.get_all("Host") == ["acronis.example.com"] and req.data.path == raw_path
    assert flow.metadata[META_STANDIN] == "http://127.0.0.1:9101"  # the audit line still says where it went


def test_a_flow_that_was_not_routed_is_left_alone_after_the_response(
    addon: StandIns, make_flow: FlowFactory
) -> None:
    flow = make_flow("http://other.example.com/x")
    addon.request(flow)
    flow.response = http.Response.make(200)
    addon.response(flow)
    assert flow.request.url == "http://other.example.com/x"


def test_a_connect_mitmproxy_already_answered_is_not_the_stand_in(
    addon: StandIns, make_flow: FlowFactory
) -> None:
    """mitmproxy's own proxyauth answers 407 before any script: that is no stand-in's answer."""
    flow = make_flow("acronis.example.com:443", method="CONNECT")
    flow.response = http.Response.make(407)
    addon.http_connect(flow)
    assert flow.response.status_code == 407
    assert META_ANSWERED_BY not in flow.metadata and META_STANDIN not in flow.metadata
