"""An unprovisioning waits for a usage push of its tenant that is on the wire: no push may reach the
controller after the tenant's DELETE was answered (tests/e2e/test_rig.py shows it through the proxies)."""

from __future__ import annotations

import uuid

import peewee as pw
import pytest

from endpoint.aps import jobs, operations, tenants
from endpoint.aps.context import Outcome
from endpoint.aps.operations import OPERATIONS, UsagePushInFlight
from endpoint.aps.payloads import AdminInput, TenantInput
from endpoint.aps.users import USAGE_SYNC
from tests.support.aps_builders import INSTANCE_ID, TENANT_TYPE, Bound, bound_instance


@pytest.fixture
def tenant(database: pw.Database) -> str:
    bound: Bound = bound_instance()
    assert bound is not None
    aps_id = str(uuid.uuid4())
    tenants.provision(INSTANCE_ID, TenantInput(aps_id, TENANT_TYPE, "T", None, None, AdminInput("boss")), "T")
    return aps_id


def claimed(operation: str, aps_id: str) -> jobs.Ticket:
    ticket = jobs.claim(jobs.submit(INSTANCE_ID, aps_id, operation, {}, "tx-9").id, lease=60)
    assert ticket is not None
    return ticket


def test_the_delete_waits_until_the_push_is_done(tenant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    push = claimed(USAGE_SYNC, tenant)  # a runner holds it: its PUT may be on the wire
    delete = claimed("tenants.unprovision", tenant)
    waits: list[float] = []

    def push_finishes_meanwhile(seconds: float) -> None:
        waits.append(seconds)
        jobs.complete(push, Outcome(200))

    monkeypatch.setattr(operations.time, "sleep", push_finishes_meanwhile)
    unprovision = OPERATIONS["tenants.unprovision"]
    assert unprovision.prepare is not None
    unprovision.prepare(delete, lambda: pytest.fail("no controller call"))  # type: ignore[arg-type,return-value]
    assert len(waits) == 1  # it waited for the push, then went on
    assert unprovision.apply(delete, None).status == 204
    assert tenants.find_tenant(INSTANCE_ID, tenant) is None


def test_a_push_claimed_after_the_wait_sends_the_delete_back_for_a_retry(tenant: str) -> None:
    delete = claimed("tenants.unprovision", tenant)
    claimed(USAGE_SYNC, tenant)
    with pytest.raises(UsagePushInFlight):  # a ConnectorError: the runner retries the job later
        OPERATIONS["tenants.unprovision"].apply(delete, None)
    assert tenants.find_tenant(INSTANCE_ID, tenant) is not None


def test_without_a_push_on_the_wire_nothing_waits(tenant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(operations.time, "sleep", lambda seconds: pytest.fail("waited"))
    delete = claimed("tenants.unprovision", tenant)
    unprovision = OPERATIONS["tenants.unprovision"]
    unprovision.prepare(delete, lambda: pytest.fail("no controller call"))  # type: ignore[arg-type,misc,return-value]
    assert unprovision.apply(delete, None).status == 204
