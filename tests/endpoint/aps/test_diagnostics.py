"""testConnection: every step is tried and reported, failures say why without secrets."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
import requests

from endpoint.aps.diagnostics import check_proxy, run_connection_test
from endpoint.aps.outbound import Outbound
from endpoint.outbox.settings import AcronisSettings, DatacenterSettings
from proxy.controller import ControllerClient
from proxy.session import ProxySettings
from tests.support.aps_builders import CONTROLLER_URI, INSTANCE_ID, StubController, aps_settings
from tests.support.builders import CONSUMER_KEY, CONSUMER_SECRET
from tests.support.simulator_processes import free_port

DC = DatacenterSettings(url="https://eu8-cloud.acronis.com", client_id="cid", client_secret_env="DC_SECRET")


def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
    if request.url and request.url.endswith("/bc/idp/token"):
        token = {"access_token": "t0k3n", "token_type": "bearer", "expires_in": 3600}
        return 200, {"Content-Type": "application/json"}, json.dumps(token).encode()
    return 200, {"Content-Type": "application/json"}, json.dumps({"aps": {"id": INSTANCE_ID}}).encode()


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def outbound_with(stub: StubController, proxy: ProxySettings, environ: dict[str, str]) -> Outbound:
    return Outbound(proxy, aps_settings(), environ, session=stub.session)


def controller(stub: StubController) -> ControllerClient:
    settings = aps_settings(controller_max_tries=1)
    return ControllerClient(stub.session, CONTROLLER_URI, CONSUMER_KEY, CONSUMER_SECRET, settings)


def test_everything_reachable(listening: int) -> None:
    stub = StubController(respond=answer)
    outbound = outbound_with(stub, ProxySettings(url=f"http://127.0.0.1:{listening}"), {"DC_SECRET": "s"})
    try:
        report = run_connection_test(
            outbound, AcronisSettings(datacenters=(DC,)), lambda: controller(stub), INSTANCE_ID, "tx"
        )
    finally:
        outbound.close()
    assert report["ok"] is True
    assert [step["name"] for step in report["steps"]] == [
        "proxy",
        "controller",
        "acronis https://eu8-cloud.acronis.com",
    ]
    assert [call["url"] for call in stub.calls] == [
        f"{CONTROLLER_URI}aps/2/resources/{INSTANCE_ID}",
        "https://eu8-cloud.acronis.com/bc/idp/token",
    ]


def test_each_failure_is_reported_and_the_others_still_run() -> None:
    stub = StubController(status=503)
    refused = ProxySettings(url=f"http://127.0.0.1:{free_port()}", connect_timeout=0.5)
    outbound = outbound_with(stub, refused, {})
    try:
        report = run_connection_test(
            outbound, AcronisSettings(datacenters=(DC,)), lambda: controller(stub), INSTANCE_ID, None
        )
    finally:
        outbound.close()
    steps = {step["name"]: step for step in report["steps"]}
    assert report["ok"] is False
    assert not steps["proxy"]["ok"]
    assert steps["controller"]["detail"] == "The controller answered 503."
    assert not steps["acronis"]["ok"] and "DC_SECRET" in steps["acronis"]["detail"]


def test_no_proxy_and_no_datacenter() -> None:
    stub = StubController(respond=answer)
    outbound = outbound_with(stub, ProxySettings(), {})
    try:
        assert check_proxy(outbound).startswith("no outbound proxy configured")
        report = run_connection_test(outbound, AcronisSettings(), lambda: controller(stub), INSTANCE_ID, None)
    finally:
        outbound.close()
    assert [(s["name"], s["ok"]) for s in report["steps"]] == [
        ("proxy", True),
        ("controller", True),
        ("acronis", False),
    ]
