"""The Acronis client against the simulator: token handling, status rules, bounded retries, the proxy."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any
from urllib.parse import quote_plus

import pytest
import requests

from endpoint.outbox.settings import AcronisSettings
from proxy.acronis import AcronisClient, Datacenter
from proxy.errors import ApiRejected, ApiUnavailable, AuthFailure, Interrupted, ProxyFailure, TransportTimeout
from proxy.session import ProxySettings, build_session
from proxy.transport import parse_retry_after
from tests.support.simulator_processes import (
    CLIENT_ID,
    CLIENT_SECRET,
    ProxyProcess,
    Simulator,
    Tls,
    free_port,
    wait_until,
)
from tests.support.stub_adapter import StubAdapter

TENANT = "0dd47bbb-d065-447f-ab7c-06e05887078b"
ALERT = {
    "type": "cti.a.p.am.alert.v1.0~a.p.basic.v1.0~vendor.app.malware_detected.v1.0",
    "category": "cti.a.p.am.category.v1.0~vendor.app.protection.v1.0",
    "details": {
        "title": "Malware detected",
        "category": "Protection",
        "description": "x",
        "fields": {"File": "C:\\temp\\x.exe"},
    },
    "tenantID": TENANT,
}
WORKLOAD = {
    "type": "cti.a.p.wm.workload.v1.0~a.p.wm.aspect.v1.0~vendor.app.virtual_machine.v1.0",
    "name": "web-01",
    "attributes": {},
    "enabled": True,
    "tenant_id": TENANT,
    "allowed_actions": [],
}


class Waits:
    """Stands in for time passing: records each retry wait instead of sleeping."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.delays: list[float] = []
        self.stop_after = stop_after

    def __call__(self, seconds: float) -> bool:
        self.delays.append(seconds)
        return self.stop_after is not None and len(self.delays) >= self.stop_after

    def now(self) -> float:
        """A monotonic clock that advances only by the waits."""
        return sum(self.delays)


def make_client(
    sim: Simulator,
    tls: Tls,
    *,
    proxy: str | None = None,
    secret: str = CLIENT_SECRET,
    waits: Waits | None = None,
    read_timeout: float = 5.0,
    **calls: Any,
) -> AcronisClient:
    transport = ProxySettings(url=proxy, ca_bundle=tls.ca_pem, read_timeout=read_timeout)
    session = build_session(transport, {})
    waits = waits or Waits()
    return AcronisClient(
        session,
        Datacenter(sim.url, CLIENT_ID, secret),
        AcronisSettings(**calls),
        wait=waits,
        monotonic=waits.now,
        rng=lambda: 1.0,
    )


def by_endpoint(sim: Simulator, endpoint: str) -> list[int]:
    return [r["status"] for r in sim.received()["requests"] if r["endpoint"] == endpoint]


def test_token_is_cached_and_alerts_return_their_ids(simulator: Simulator, tls: Tls) -> None:
    client = make_client(simulator, tls)
    ids = [client.post_alert(ALERT) for _ in range(5)]
    received = simulator.received()
    assert received["tokens_issued"] == 1
    assert ids == [a["id"] for a in received["alerts"]]


def test_basic_credentials_are_form_encoded_first(tls: Tls) -> None:
    seen: list[requests.PreparedRequest] = []

    def respond(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        seen.append(request)
        return (
            200,
            {},
            json.dumps({"access_token": "t", "token_type": "bearer", "expires_on": 2**31}).encode(),
        )

    session = build_session(ProxySettings(), {})
    session.mount("https://", StubAdapter(respond))
    client = AcronisClient(
        session, Datacenter("https://dc.example.com", "id:1", "s3:cr%et+ é"), AcronisSettings()
    )
    client.tokens.get()
    expected = base64.b64encode(f"{quote_plus('id:1')}:{quote_plus('s3:cr%et+ é')}".encode()).decode()
    assert seen[0].headers["Authorization"] == f"Basic {expected}"
    assert seen[0].body == "grant_type=client_credentials"
    assert seen[0].url == "https://dc.example.com/bc/idp/token"


def test_token_redirect_is_not_followed(tls: Tls) -> None:
    adapter = StubAdapter(lambda r: (302, {"Location": "https://attacker.example/steal"}, b""))
    session = build_session(ProxySettings(), {})
    session.mount("https://", adapter)
    client = AcronisClient(session, Datacenter("https://dc.example.com", "id", "secret"), AcronisSettings())
    with pytest.raises(AuthFailure, match="302"):
        client.post_alert(ALERT)
    assert [c["url"] for c in adapter.calls] == ["https://dc.example.com/bc/idp/token"]


def test_wrong_secret_is_an_auth_failure(simulator: Simulator, tls: Tls) -> None:
    with pytest.raises(AuthFailure, match="401"):
        make_client(simulator, tls, secret="not-the-secret").post_alert(ALERT)
    assert simulator.received()["alerts"] == []


def test_expired_token_is_refreshed_once_and_the_call_repeated(simulator: Simulator, tls: Tls) -> None:
    client = make_client(simulator, tls)
    client.post_alert(ALERT)
    simulator.expire_tokens()
    client.post_alert(ALERT)
    assert by_endpoint(simulator, "alerts") == [200, 401, 200]
    assert simulator.received()["tokens_issued"] == 2 and client.tokens.refreshes == 2


def test_second_401_is_a_hard_error(simulator: Simulator, tls: Tls) -> None:
    simulator.faults({"endpoint": "alerts", "status": 401, "count": 2})
    with pytest.raises(AuthFailure, match="twice"):
        make_client(simulator, tls).post_alert(ALERT)
    assert by_endpoint(simulator, "alerts") == [401, 401]
    assert simulator.received()["tokens_issued"] == 2


def test_429_is_retried_after_the_capped_retry_after(simulator: Simulator, tls: Tls) -> None:
    simulator.faults(
        {"endpoint": "alerts", "status": 429, "retry_after": "999999", "count": 1},
        {"endpoint": "alerts", "status": 429, "retry_after": "2", "count": 1},
    )
    waits = Waits()
    make_client(simulator, tls, waits=waits, retry_budget=1000).post_alert(ALERT)
    assert waits.delays == [60.0, 2.0]
    assert by_endpoint(simulator, "alerts") == [429, 429, 200]


def test_5xx_storm_is_bounded_by_tries_and_budget(simulator: Simulator, tls: Tls) -> None:
    simulator.faults({"endpoint": "workloads", "status": 503, "count": -1})
    waits = Waits()
    with pytest.raises(ApiUnavailable) as info:
        make_client(simulator, tls, waits=waits, max_tries=4, backoff_base=0.5).post_workloads([WORKLOAD])
    assert info.value.status == 503
    assert waits.delays == [0.5, 1.0, 2.0]  # exponential (rng pinned to the top of the jitter range)
    assert by_endpoint(simulator, "workloads") == [503] * 4
    simulator.faults()
    with pytest.raises(ApiUnavailable):  # the budget stops earlier than max_tries
        make_client(simulator, tls, waits=Waits(), max_tries=10, retry_budget=1.2).post_workloads([WORKLOAD])
    assert len(by_endpoint(simulator, "workloads")) == 4 + 2


def test_4xx_is_rejected_without_retry(simulator: Simulator, tls: Tls) -> None:
    bad = {**ALERT, "tenant_id": TENANT}
    with pytest.raises(ApiRejected) as info:
        make_client(simulator, tls).post_alert(bad)
    assert info.value.status == 400 and "tenant_id" in info.value.body
    assert by_endpoint(simulator, "alerts") == [400]


def test_workloads_carry_the_dc_client_id_and_204_is_consumed(simulator: Simulator, tls: Tls) -> None:
    client = make_client(simulator, tls)
    client.post_workloads([{**WORKLOAD, "client_id": "forged"}, {**WORKLOAD, "name": "web-02"}])
    workloads = simulator.received()["workloads"]
    assert [w["client_id"] for w in workloads] == [CLIENT_ID, CLIENT_ID]
    assert simulator.received()["workload_batches"] == 1


def test_hung_upstream_hits_the_read_timeout(simulator: Simulator, tls: Tls) -> None:
    simulator.faults({"endpoint": "alerts", "status": 0, "delay": 1.0, "count": 2})
    client = make_client(simulator, tls, read_timeout=0.3, max_tries=2)
    client.tokens.get()
    with pytest.raises(TransportTimeout, match="read timed out"):
        client.post_alert(ALERT)
    # The simulator still answers both late; let it, so the next test starts clean.
    assert wait_until(lambda: len(by_endpoint(simulator, "alerts")) == 2, timeout=5)


def test_stop_during_a_retry_wait_interrupts(simulator: Simulator, tls: Tls) -> None:
    simulator.faults({"endpoint": "alerts", "status": 503, "count": -1})
    with pytest.raises(Interrupted):
        make_client(simulator, tls, waits=Waits(stop_after=1)).post_alert(ALERT)
    assert by_endpoint(simulator, "alerts") == [503]


def test_every_call_goes_through_the_proxy_on_one_tunnel(
    simulator: Simulator, tls: Tls, proxy_process: ProxyProcess
) -> None:
    client = make_client(simulator, tls, proxy=proxy_process.url)
    for _ in range(10):
        client.post_alert(ALERT)
    client.post_workloads([WORKLOAD] * 5)
    assert len(simulator.received()["alerts"]) == 10
    assert [(f["method"], f["target"]) for f in proxy_process.flows()] == [
        ("CONNECT", f"127.0.0.1:{simulator.port}")
    ]


def test_dead_proxy_fails_fast_with_proxy_failure(simulator: Simulator, tls: Tls) -> None:
    client = make_client(simulator, tls, proxy=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ProxyFailure, match="refused"):
        client.post_alert(ALERT)
    assert simulator.received()["requests"] == []


def test_parse_retry_after() -> None:
    assert parse_retry_after("5", 60) == 5 and parse_retry_after("999999", 60) == 60
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 60) == 0
    assert parse_retry_after("soon", 60) is None and parse_retry_after(None, 60) is None


def test_no_secret_token_or_credential_header_is_logged(
    simulator: Simulator, tls: Tls, proxy_process: ProxyProcess, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(simulator, tls, proxy=proxy_process.url)
    with caplog.at_level(logging.DEBUG):
        client.post_alert(ALERT)
        simulator.expire_tokens()
        client.post_workloads([WORKLOAD])
        simulator.faults({"endpoint": "alerts", "status": 401, "count": 2})
        with pytest.raises(AuthFailure):
            client.post_alert(ALERT)
    text = caplog.text
    tokens = [r for r in simulator.received()["requests"] if r["endpoint"] == "token"]
    assert tokens and "401, token dropped" in text
    for needle in (CLIENT_SECRET, quote_plus(CLIENT_SECRET), "Bearer", "Basic ", "Authorization"):
        assert needle not in text
