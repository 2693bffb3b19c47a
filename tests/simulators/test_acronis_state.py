"""Simulator state: the validation rules of §3/§4, faults, tokens, the record."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from simulators.acronis_state import Fault, SimulatorState, alert_errors, workload_errors

TENANT = "0dd47bbb-d065-447f-ab7c-06e05887078b"
ALERT = {
    "type": "cti.a.p.am.alert.v1.0~a.p.basic.v1.0~vendor.app.malware_detected.v1.0",
    "category": "cti.a.p.am.category.v1.0~vendor.app.protection.v1.0",
    "details": {"title": "t", "category": "c", "description": "d", "fields": {"k": "v"}},
    "tenantID": TENANT,
    "ResourceID": "r1",
    "ResourceName": "pc-1",
}
ITEM = {
    "type": "cti.a.p.wm.workload.v1.0~a.p.wm.aspect.v1.0~vendor.app.virtual_machine.v1.0",
    "name": "vm",
    "attributes": {},
    "enabled": True,
    "tenant_id": TENANT,
    "client_id": "c1",
    "allowed_actions": ["cti.a.ui.item.v1.0~a.ui.ext_p.workload_actions.action.v1.0~vendor.app.open.v1.0"],
}


def basic(client_id: str, secret: str, encode: bool = True) -> str:
    f = quote_plus if encode else (lambda s: s)
    return "Basic " + base64.b64encode(f"{f(client_id)}:{f(secret)}".encode()).decode()


def test_valid_alert_and_workloads_pass() -> None:
    assert alert_errors(ALERT) == []
    assert workload_errors({"items": [ITEM, ITEM]}, "c1", 10) == []


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"tenant_id": TENANT}, "unknown field 'tenant_id'"),
        ({"resourceId": "x"}, "unknown field 'resourceId'"),
        ({"tenantID": None}, "tenantID"),
        ({"type": "cti.a.p.am.alert.v1.0~vendor.app.x.v1.0"}, "type"),
        ({"category": "Protection"}, "category"),
        ({"details": {"title": "t"}}, "details.category"),
        ({"details": {"title": "t", "category": "c", "description": "d", "fields": {"n": 1}}}, "fields"),
    ],
)
def test_alert_schema_errors(change: dict[str, Any], error: str) -> None:
    assert any(error in e for e in alert_errors({**ALERT, **change}))


def test_missing_alert_fields_are_named() -> None:
    assert "missing field 'tenantID'" in alert_errors({k: v for k, v in ALERT.items() if k != "tenantID"})
    assert alert_errors([ALERT]) == ["body must be a JSON object"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"tenantID": TENANT}, "unknown field 'tenantID'"),
        ({"client_id": "someone-else"}, "client_id"),
        ({"enabled": "yes"}, "enabled"),
        ({"allowed_actions": ["open"]}, "allowed_actions"),
        ({"attributes": []}, "attributes"),
        ({"type": "vm"}, "type"),
    ],
)
def test_workload_schema_errors(change: dict[str, Any], error: str) -> None:
    assert any(
        error in e and "items[1]" in e
        for e in workload_errors({"items": [ITEM, {**ITEM, **change}]}, "c1", 10)
    )


def test_a_trailing_newline_is_not_a_valid_cti_or_uuid() -> None:
    """The patterns are whole-string: ``re.match`` with ``$`` would accept "<value>\\n"."""
    assert any("tenantID" in e for e in alert_errors({**ALERT, "tenantID": TENANT + "\n"}))
    assert any("type" in e for e in alert_errors({**ALERT, "type": ALERT["type"] + "\n"}))
    assert any("category" in e for e in alert_errors({**ALERT, "category": ALERT["category"] + "\n"}))
    bad_item = {**ITEM, "allowed_actions": [ITEM["allowed_actions"][0] + "\n"]}
    assert any("allowed_actions" in e for e in workload_errors({"items": [bad_item]}, "c1", 10))
    bad_type = {**ITEM, "type": ITEM["type"] + "\n"}
    assert any("type" in e for e in workload_errors({"items": [bad_type]}, "c1", 10))
    bad_tenant = {**ITEM, "tenant_id": TENANT + "\n"}
    assert any("tenant_id" in e for e in workload_errors({"items": [bad_tenant]}, "c1", 10))


def test_workload_batch_shape_and_size() -> None:
    assert workload_errors([ITEM], "c1", 10) == ['body must be {"items": [...]}']
    assert workload_errors({"items": []}, "c1", 10) == ["items: 1..10 workloads per request"]
    assert workload_errors({"items": [ITEM] * 11}, "c1", 10) == ["items: 1..10 workloads per request"]
    missing = {k: v for k, v in ITEM.items() if k != "client_id"}
    assert "items[0]: missing field 'client_id'" in workload_errors({"items": [missing]}, "c1", 10)


def test_tokens_need_form_encoded_basic_credentials_and_expire() -> None:
    now = [1000.0]
    state = SimulatorState({"id:1": "s3:cr%et+ é"}, token_ttl=60, clock=lambda: now[0])
    grant = {"grant_type": [b"client_credentials"]}
    assert state.issue_token(basic("id:1", "s3:cr%et+ é", encode=False), grant)[0] == 401  # App. B skipped
    assert state.issue_token(basic("id:1", "wrong"), grant)[0] == 401
    assert state.issue_token(basic("id:1", "s3:cr%et+ é"), {"grant_type": [b"password"]})[0] == 400
    status, body = state.issue_token(basic("id:1", "s3:cr%et+ é"), grant)
    assert status == 200 and body["expires_on"] == 1060 and body["token_type"] == "bearer"
    assert state.bearer_client("Bearer " + body["access_token"]) == "id:1"
    now[0] = 1060
    assert state.bearer_client("Bearer " + body["access_token"]) is None
    now[0] = 1000
    assert state.expire_tokens() == 1 and state.bearer_client("Bearer " + body["access_token"]) is None


def test_faults_are_consumed_in_order_and_match_bodies() -> None:
    state = SimulatorState({})
    state.add_faults(
        [
            {"endpoint": "alerts", "status": 503, "count": 2},
            {"endpoint": "*", "status": 500, "match": "bad", "count": -1},
        ]
    )
    assert state.take_fault("workloads", b"ok") is None
    assert [state.take_fault("alerts", b"x").status for _ in range(2)] == [503, 503]  # type: ignore[union-attr]
    assert state.take_fault("alerts", b"x") is None
    assert state.take_fault("workloads", b"a bad one").status == 500  # type: ignore[union-attr]
    assert len(state.faults) == 1  # count -1 stays
    with pytest.raises(ValueError):
        Fault(endpoint="nowhere")
    with pytest.raises(TypeError):
        state.add_faults([{"endpoint": "alerts", "colour": "red"}])


def test_clearing_faults_of_one_endpoint_keeps_the_others() -> None:
    state = SimulatorState({})
    state.add_faults([{"endpoint": "jwks", "count": -1}, {"endpoint": "alerts"}, {"endpoint": "jwks"}])
    assert state.clear_faults("jwks") == 2 and [f.endpoint for f in state.faults] == ["alerts"]
    assert state.clear_faults() == 1 and state.faults == []


def test_reset_keeps_the_identity_provider_keys() -> None:
    state = SimulatorState({})
    kid = state.keyring.signing_key().kid
    state.reset()
    assert state.keyring.signing_key().kid == kid  # verifiers cache them; a reset must not pull them away


def test_record_file_and_reset(tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    state = SimulatorState({}, record_path=str(record))
    state.log_request({"endpoint": "alerts", "status": 200})
    state.accept_alert(ALERT)
    state.accept_workloads([ITEM])
    snap = state.snapshot()
    assert snap["workload_batches"] == 1 and snap["alerts"][0]["tenantID"] == TENANT
    assert json.loads(record.read_text())["endpoint"] == "alerts"
    state.reset()
    assert state.snapshot()["alerts"] == [] and state.snapshot()["requests"] == []
