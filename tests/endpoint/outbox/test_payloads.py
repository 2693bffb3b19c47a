"""Payload builders: §3/§4 validation, casing, routing to a mapped tenant on a configured DC."""

from __future__ import annotations

from typing import Any

import pytest

from endpoint.errors import PayloadError
from endpoint.outbox.payloads import PayloadRules, TenantResolver, build_alert, build_item, build_workload
from models import Organization
from tests.endpoint.outbox.conftest import APP, TENANTS, alert, workload
from tests.support.builders import DATACENTER, create_customer, create_org, map_org
from tests.support.simulator_processes import CLIENT_ID

T0 = TENANTS[0]


def test_alert_is_routed_and_kept_verbatim(rules: PayloadRules) -> None:
    item = build_alert(alert(T0, 1), rules, TenantResolver(rules))
    assert (item.kind, item.tenant_id, item.datacenter_url) == ("alert", T0, DATACENTER)
    assert item.payload["tenantID"] == T0 and item.payload["ResourceName"] == "pc-1"
    assert "kind" not in item.payload


def test_alert_by_vendor_organization(rules: PayloadRules) -> None:
    org = Organization.get(Organization.name == "Customer 1")
    record = {k: v for k, v in alert(T0).items() if k != "tenantID"} | {"organization_id": org.id}
    item = build_alert(record, rules, TenantResolver(rules))
    assert item.tenant_id == TENANTS[1] and item.payload["tenantID"] == TENANTS[1]
    assert "organization_id" not in item.payload


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tenant_id": T0}, "tenantID (capital ID)"),
        ({"resourceId": "x"}, "use ResourceID"),
        ({"type": "cti.a.p.am.alert.v1.0~a.p.basic.v1.0~other.app.x.v1.0"}, "type: expected a CTI"),
        ({"type": "malware"}, "type"),
        ({"category": "Protection"}, "category"),
        ({"details": "text"}, "details: required object"),
        ({"details": {"title": "t", "category": "c", "description": ""}}, "details.description"),
        (
            {"details": {"title": "t", "category": "c", "description": "d", "fields": {"a": 1}}},
            "details.fields",
        ),
        ({"details": {"title": "t", "category": "c", "description": "d", "extra": 1}}, "details: unknown"),
        ({"ResourceID": 5}, "ResourceID"),
        ({"surprise": True}, "unknown field 'surprise'"),
        ({"type": alert(T0)["type"] + "\n"}, "type: expected a CTI"),  # "$" would match before "\n"
        ({"tenantID": T0 + "\n"}, "lower-case UUID"),
        ({"tenantID": "954EF80F-5ACB-405B-81DF-E850606B406D"}, "lower-case UUID"),
        ({"tenantID": "11111111-2222-4333-8444-555555555555"}, "is not mapped"),
        ({"organization_id": "org-1"}, "exactly one of"),
    ],
)
def test_bad_alerts_are_rejected_with_a_clear_reason(
    rules: PayloadRules, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(PayloadError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_alert(alert(T0) | change, rules, TenantResolver(rules))


def test_workload_gets_client_id_and_default_actions(rules: PayloadRules) -> None:
    item = build_workload(workload(T0, 3), rules, TenantResolver(rules))
    assert item.payload == {
        "type": f"cti.a.p.wm.workload.v1.0~a.p.wm.aspect.v1.0~{APP}.virtual_machine.v1.0",
        "name": "vm-3",
        "attributes": {"seq": "3"},
        "enabled": True,
        "tenant_id": T0,
        "client_id": CLIENT_ID,
        "allowed_actions": list(rules.default_allowed_actions),
    }
    explicit = build_workload(workload(T0, allowed_actions=[], enabled=False), rules, TenantResolver(rules))
    assert explicit.payload["allowed_actions"] == [] and explicit.payload["enabled"] is False


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tenantID": T0}, "tenant_id \\(snake case\\)"),
        ({"client_id": "someone-else"}, "client_id"),
        ({"allowed_actions": ["open_console"]}, "allowed_actions"),
        ({"allowed_actions": ["cti.a.p.wm.action.v1.0~a.p.open_console.v1.0\n"]}, "allowed_actions"),
        ({"type": f"cti.a.p.wm.workload.v1.0~a.p.wm.aspect.v1.0~{APP}.virtual_machine.v1.0\n"}, "type"),
        ({"enabled": "yes"}, "enabled"),
        ({"attributes": ["a"]}, "attributes"),
        ({"name": " "}, "name"),
        ({"attributes": {"blob": "x" * 70_000}}, "larger than"),
    ],
)
def test_bad_workloads_are_rejected(rules: PayloadRules, change: dict[str, Any], message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        build_workload(workload(T0) | change, rules, TenantResolver(rules))


def test_tenant_on_an_unconfigured_dc_is_rejected(rules: PayloadRules) -> None:
    stranger = create_customer("Elsewhere", create_org("P2"))
    map_org(stranger, "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "https://us5-cloud.acronis.com")
    with pytest.raises(PayloadError, match="us5-cloud.acronis.com, which is not configured"):
        build_alert(alert("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"), rules, TenantResolver(rules))


def test_build_item_dispatches_on_kind(rules: PayloadRules) -> None:
    resolver = TenantResolver(rules)
    assert build_item({"kind": "alert", **alert(T0)}, rules, resolver).kind == "alert"
    assert build_item({"kind": "workload", **workload(T0)}, rules, resolver).kind == "workload"
    with pytest.raises(PayloadError, match="kind"):
        build_item({"kind": "incident"}, rules, resolver)
    with pytest.raises(PayloadError, match="JSON object"):
        build_item([alert(T0)], rules, resolver)


def test_resolver_caches_lookups(rules: PayloadRules) -> None:
    from playhouse.test_utils import count_queries

    resolver = TenantResolver(rules)
    with count_queries() as counter:
        for n in range(10):
            build_alert(alert(T0, n), rules, resolver)
    assert counter.count == 1
