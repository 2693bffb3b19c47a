"""The scenarios against the fake CyberApp: every step as expected, re-runnable, a wrong endpoint caught."""

from __future__ import annotations

import io
from typing import Any

import pytest

from simulators.controller.callbacks import cyberapp_auth
from simulators.gateway.run import GatewayRun
from simulators.gateway.scenarios import SCENARIOS, authorization, mapping, mirroring
from simulators.gateway.sender import GatewaySender
from simulators.gateway.tokens import TokenFactory
from tests.simulators.gateway.conftest import Served
from tests.simulators.gateway.fake_cyberapp import LOGIN, ORG, PASSWORD

AUTH = cyberapp_auth(LOGIN, PASSWORD)


def make_run(
    served: Served, state: dict[str, Any], auth: str | None = None
) -> tuple[GatewayRun, io.StringIO]:
    out = io.StringIO()
    sender = GatewaySender(served.url, TokenFactory(served.app.ring.signing_key))
    return GatewayRun(sender, state, auth, out=out), out


def callbacks(served: Served) -> list[str]:
    return [
        r["body"]["context"]["callback_id"].split("~")[1].removesuffix(".v1.0") for r in served.app.received
    ]


def test_mirroring_walks_the_checklist_and_can_run_again(served: Served) -> None:
    state: dict[str, Any] = {}
    run, out = make_run(served, state)
    mirroring(run)
    assert [r.ok for r in run.results] == [True] * 11, out.getvalue()
    labels = [r.step for r in run.results]
    assert (
        labels
        == ["enable partner"] * 3
        + ["enable customer"] * 3
        + ["disable customer"] * 2
        + ["disable partner"] * 3
    )
    assert callbacks(served) == [
        "a.p.partner.mirroring.get_state",
        "a.p.partner.mirroring.enable",
        "a.p.partner.mirroring.get_state",
        "a.p.customer.mirroring.get_state",
        "a.p.customer.mirroring.set_state",
        "a.p.customer.mirroring.get_state",
        "a.p.customer.mirroring.set_state",
        "a.p.customer.mirroring.get_state",
        "a.p.partner.mirroring.reset",
        "a.p.partner.mirroring.get_state",
        "a.p.customer.mirroring.get_state",
    ]
    partner = state["mirrored_partner_tenant"]
    assert all(r["body"]["context"]["tenant_id"] == partner for r in served.app.received)
    assert all("X-CyberApp-Auth" not in r["headers"] for r in served.app.received)
    enable = served.app.received[1]["body"]
    assert (
        enable["payload"]["acronis_tenant_id"] == partner and enable["created_at"] == "0001-01-01T00:00:00Z"
    )
    assert (
        served.app.received[4]["body"]["payload"]["enabled"][0]["acronis_tenant_id"]
        == state["mirrored_customer_tenant"]
    )
    again, _ = make_run(served, state)
    mirroring(again)
    assert all(r.ok for r in again.results) and state["mirrored_partner_vendor_id"] == "1"


def test_mirroring_catches_a_customer_that_stays_enabled(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = served.app._mirroring

    def never_disables(body: dict[str, Any], callback: str, tenant: str) -> Any:
        body.get("payload", {}).pop("disabled", None)
        return original(body, callback, tenant)

    monkeypatch.setattr(served.app, "_mirroring", never_disables)
    run, out = make_run(served, {})
    mirroring(run)
    assert (
        "disable customer] a.p.customer.mirroring.get_state.v1.0 -> 200 UNEXPECTED (customer"
        in out.getvalue()
    )


def test_mapping_enables_maps_unmaps_and_disables(served: Served) -> None:
    state: dict[str, Any] = {}
    run, out = make_run(served, state, AUTH)
    mapping(run)
    assert [r.ok for r in run.results] == [True] * 12, out.getvalue()
    write = served.app.received[1]["body"]["payload"]
    assert write == {"vendor_tenant_id": ORG, "acronis_tenant_id": state["mapped_partner_tenant"]}
    mapped = served.app.received[5]["body"]["payload"]["modified"]
    assert mapped == [
        {"vendor_tenant_id": "org-customer-a", "acronis_tenant_id": state["mapped_customer_tenant"]}
    ]
    assert served.app.received[7]["body"]["payload"]["modified"] == [{"vendor_tenant_id": "org-customer-a"}]
    assert served.app.mapped_partner is None and served.app.customer_map == {}  # it ends as it started
    assert all(r["headers"]["X-CyberApp-Auth"] == AUTH for r in served.app.received)


def test_mapping_without_credentials_says_what_is_missing(served: Served) -> None:
    run, out = make_run(served, {})
    mapping(run)
    assert not run.results[0].ok and "--login" in out.getvalue() and served.app.received == []


@pytest.mark.parametrize("auth", [AUTH, None], ids=["mapped", "mirroring"])
def test_authorization_rejects_every_broken_token(served: Served, auth: str | None) -> None:
    run, out = make_run(served, {}, auth)
    authorization(run)
    assert [r.status for r in run.results] == [401] * 8 + [200], out.getvalue()
    assert all(r.ok for r in run.results)
    assert {r.step for r in run.results} >= {"missing", "corrupt", "other-app", "valid"}


def test_a_scenario_reports_an_endpoint_that_accepts_a_broken_token(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        served.app, "_roles", lambda authorization: set(served.app.received[-1]["body"]["context"].values())
    )
    run, out = make_run(served, {})
    authorization(run)
    assert "missing] a.p.partner.mirroring.get_state.v1.0 -> 200 UNEXPECTED (wanted 401)" in out.getvalue()


def test_every_scenario_is_listed() -> None:
    assert set(SCENARIOS) == {"mirroring", "mapping", "authorization"}
