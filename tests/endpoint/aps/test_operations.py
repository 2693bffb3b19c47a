"""Job operations: the tenant name read on the controller (as the tenant); usage pushed after changes."""

from __future__ import annotations

import uuid

import pytest

from endpoint.aps import jobs, tenants
from endpoint.aps.operations import OPERATIONS, tenant_input, tenant_payload
from endpoint.aps.payloads import AdminInput, TenantInput
from endpoint.aps.users import USAGE_SYNC
from proxy.controller import ControllerClient
from proxy.errors import ApiUnavailable
from tests.support.aps_builders import (
    ACCOUNT,
    CONTROLLER_URI,
    INSTANCE_ID,
    TENANT_TYPE,
    Bound,
    StubController,
    aps_settings,
    sent_headers,
)
from tests.support.builders import CONSUMER_KEY, CONSUMER_SECRET


def ticket_for(operation: str, aps_id: str, payload: dict[str, object]) -> jobs.Ticket:
    view = jobs.submit(INSTANCE_ID, aps_id, operation, payload, "tx-7")
    ticket = jobs.claim(view.id, lease=60)
    assert ticket is not None
    return ticket


def client(stub: StubController) -> ControllerClient:
    settings = aps_settings(controller_max_tries=1)
    return ControllerClient(stub.session, CONTROLLER_URI, CONSUMER_KEY, CONSUMER_SECRET, settings)


def test_payloads_round_trip() -> None:
    tenant = TenantInput(str(uuid.uuid4()), TENANT_TYPE, None, ACCOUNT, 5, AdminInput("boss", None, "b@x.io"))
    assert tenant_input(tenant_payload(tenant)) == tenant


def test_the_name_comes_from_the_account_read_as_the_tenant(bound: Bound) -> None:
    stub = StubController(resources={ACCOUNT: {"aps": {"id": ACCOUNT}, "companyName": "Acme Ltd"}})
    aps_id = str(uuid.uuid4())
    payload = tenant_payload(TenantInput(aps_id, TENANT_TYPE, None, ACCOUNT, None, None))
    ticket = ticket_for("tenants.provision", aps_id, payload)
    operation = OPERATIONS["tenants.provision"]
    assert operation.prepare is not None
    name = operation.prepare(ticket, lambda: client(stub))
    assert name == "Acme Ltd"
    [call] = stub.calls
    assert call["url"] == f"{CONTROLLER_URI}aps/2/resources/{ACCOUNT}"
    sent = sent_headers(call)
    assert sent["APS-Resource-ID"] == aps_id and sent["APS-Transaction-ID"] == "tx-7"
    assert operation.apply(ticket, name).body["name"] == "Acme Ltd"  # type: ignore[index]


def test_an_unreadable_account_gives_a_placeholder_but_an_outage_is_retried(bound: Bound) -> None:
    aps_id = str(uuid.uuid4())
    payload = tenant_payload(TenantInput(aps_id, TENANT_TYPE, None, ACCOUNT, None, None))
    ticket = ticket_for("tenants.provision", aps_id, payload)
    prepare = OPERATIONS["tenants.provision"].prepare
    assert prepare is not None
    assert prepare(ticket, lambda: client(StubController())) == f"Customer {aps_id[:8]}"  # 404
    with pytest.raises(ApiUnavailable):
        prepare(ticket, lambda: client(StubController(status=503)))


def test_a_named_tenant_never_calls_the_controller(bound: Bound) -> None:
    aps_id = str(uuid.uuid4())
    ticket = ticket_for(
        "tenants.provision",
        aps_id,
        tenant_payload(TenantInput(aps_id, TENANT_TYPE, "N", ACCOUNT, None, None)),
    )
    prepare = OPERATIONS["tenants.provision"].prepare
    assert prepare is not None and prepare(ticket, lambda: pytest.fail("no call expected")) == "N"  # type: ignore[arg-type,return-value]


def test_usage_is_pushed_for_the_tenant(bound: Bound) -> None:
    aps_id = str(uuid.uuid4())
    tenants.provision(INSTANCE_ID, TenantInput(aps_id, TENANT_TYPE, "T", None, None, AdminInput("boss")), "T")
    stub = StubController()
    ticket = ticket_for(USAGE_SYNC, aps_id, {})
    outcome = OPERATIONS[USAGE_SYNC].prepare(ticket, lambda: client(stub))  # type: ignore[misc]
    assert outcome.status == 200
    [call] = stub.calls
    assert call["method"] == "PUT" and call["url"].endswith(f"/aps/2/resources/{aps_id}")
    assert stub.resources[aps_id] == {"aps": {"id": aps_id}, "USERS": {"usage": 1}}
    tenants.unprovision(INSTANCE_ID, aps_id)
    gone = OPERATIONS[USAGE_SYNC].prepare(ticket, lambda: client(stub))  # type: ignore[misc]
    assert gone.status == 204 and len(stub.calls) == 1
