"""Mirrored enablement, the partner side and the rules both sides share (§9.4), through the dispatcher as the
web layer calls it: get_state, enable, reset, one enablement model per partner, the ledger, concurrency."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from typing import Any

import pytest

from endpoint.callbacks import enablement, mapping
from endpoint.callbacks.dispatch import CallbackDispatcher
from endpoint.callbacks.responses import CallbackResponse
from endpoint.errors import Conflict, Forbidden, PayloadError, Unavailable
from endpoint.work.executors import DatabaseRunner
from models import CUSTOMER, PARTNER, Organization, RequestLedger, User
from models.mirroring import MirroredTenant
from tests.endpoint.callbacks.mirrored import (
    C1,
    C2,
    ENABLE,
    GET_CUSTOMERS,
    GET_PARTNER,
    OTHER_P,
    PRINCIPAL,
    RESET,
    SET_STATE,
    P,
    call,
    customers,
    enable,
    lists,
    mirroring_envelope,
    on,
    partner,
    partner_state,
    payload_of,
    set_state,
    snapshot,
)
from tests.support.builders import DATACENTER, create_customer, create_org, create_user
from tests.support.callback_builders import POSTMAN_PARTNER_TENANT, RecordingHasher, World, send

OTHER_DC = "https://us2-cloud.acronis.com"


def refused(d: CallbackDispatcher, error: type[Exception], name: str, payload: Any = None, **kw: Any) -> Any:
    """Call, expect ``error``, and check that nothing was written, the ledger included."""
    before = snapshot()
    with pytest.raises(error) as info:
        call(d, name, payload, **kw)
    assert snapshot() == before
    return info.value


def test_enable_creates_the_partner_under_the_parent_and_get_state_follows(
    mirroring: CallbackDispatcher, parent: Organization
) -> None:
    got = call(mirroring, GET_PARTNER)
    assert got.body["type"] == "cti.a.p.acgw.response.v1.1~a.p.partner.mirroring.get_state.ok.v1.0"
    assert payload_of(got) == {"state": "DISABLED"}  # never seen
    answer = call(mirroring, ENABLE, partner("Acme Reseller"))
    assert answer.body["type"] == "cti.a.p.acgw.response.v1.1~a.p.partner.mirroring.enable.ok.v1.0"
    out = payload_of(answer)
    assert set(out) == {"state", "vendor_tenant_id", "acronis_tenant_id"}
    assert (out["state"], out["acronis_tenant_id"]) == ("ENABLED", P) and isinstance(
        out["vendor_tenant_id"], str
    )
    org = Organization.get_by_id(out["vendor_tenant_id"])
    assert (org.kind, org.parent_id, org.name, org.active) == (PARTNER, parent.id, "Acme Reseller", True)
    row = MirroredTenant.get(MirroredTenant.acronis_tenant_id == P)
    assert (row.kind, row.enabled, row.datacenter_url, row.settings) == (PARTNER, True, DATACENTER, "{}")
    assert partner_state(mirroring) == {"state": "ENABLED"}  # no settings stored: no settings key


def test_enable_again_updates_name_settings_and_data_center_and_keeps_the_vendor_id(
    mirroring: CallbackDispatcher,
) -> None:
    mp = enable(mirroring)
    assert enable(mirroring, "Acme Reseller GmbH", settings={"region": "eu", "seats": 5}) == mp
    assert Organization.get_by_id(mp).name == "Acme Reseller GmbH"
    assert MirroredTenant.get(MirroredTenant.acronis_tenant_id == P).name == "Acme Reseller GmbH"
    assert partner_state(mirroring) == {"state": "ENABLED", "settings": {"region": "eu", "seats": 5}}
    enable(mirroring, "Acme Reseller GmbH")  # settings absent: kept
    assert partner_state(mirroring)["settings"] == {"region": "eu", "seats": 5}
    enable(mirroring, "Acme Reseller GmbH", settings={"tier": "gold"})  # sent: replaced as a whole
    assert partner_state(mirroring)["settings"] == {"tier": "gold"}
    enable(mirroring, "Acme Reseller GmbH", settings={})
    assert partner_state(mirroring) == {"state": "ENABLED"}
    payload_of(call(mirroring, ENABLE, partner("Acme Reseller GmbH"), datacenter=OTHER_DC))
    assert MirroredTenant.get(MirroredTenant.acronis_tenant_id == P).datacenter_url == OTHER_DC


def test_an_end_state_that_holds_changes_nothing(mirroring: CallbackDispatcher) -> None:
    enable(mirroring, settings={"a": 1})
    before = snapshot(ledger=False)
    enable(mirroring, settings={"a": 1})
    enable(mirroring)
    assert snapshot(ledger=False) == before
    call(mirroring, RESET)
    before = snapshot(ledger=False)
    assert call(mirroring, RESET).status == 200  # already disabled
    assert snapshot(ledger=False) == before
    assert call(mirroring, RESET, tenant=OTHER_P).status == 200  # never seen
    assert snapshot(ledger=False) == before


def test_reset_disables_the_partner_and_every_customer_below_it_and_deletes_nothing(
    mirroring: CallbackDispatcher,
) -> None:
    mp = enable(mirroring)
    set_state(mirroring, enabled=[on(C1, "Alpha"), on(C2, "Beta")])
    alpha = MirroredTenant.get(MirroredTenant.acronis_tenant_id == C1).organization
    create_user("alpha-admin", alpha, "pw-123456789012")
    deep = create_customer("Deep", create_org("Sub", parent=Organization.get_by_id(mp)))  # any depth
    counts = (Organization.select().count(), User.select().count(), MirroredTenant.select().count())
    reset = call(mirroring, RESET)
    assert reset.status == 200 and "payload" not in reset.body
    assert reset.body["type"] == "cti.a.p.acgw.response.v1.1~a.p.partner.mirroring.reset.ok.v1.0"
    assert partner_state(mirroring) == {"state": "DISABLED"}
    assert (Organization.select().count(), User.select().count(), MirroredTenant.select().count()) == counts
    assert not any(Organization.get_by_id(o).active for o in (mp, alpha.id, deep.id))
    assert not MirroredTenant.select().where(MirroredTenant.enabled).exists()
    with pytest.raises(Conflict):
        customers(mirroring)
    assert enable(mirroring) == mp  # re-enabled: the same organization, active again ...
    assert Organization.get_by_id(mp).active and not Organization.get_by_id(alpha.id).active
    assert customers(mirroring) == []  # ... and its customers come back only through set_state


def test_enable_refuses_another_tenant_and_answers_503_without_its_parent(
    mirroring: CallbackDispatcher, runner: DatabaseRunner, hasher: RecordingHasher, caplog: Any
) -> None:
    refused(mirroring, Forbidden, ENABLE, partner(tenant=OTHER_P))
    refused(mirroring, Forbidden, ENABLE, partner(), tenant=OTHER_P)
    customer_parent = create_customer("Not a partner", create_org("Somewhere"))
    for parent_id in (str(uuid.uuid4()), customer_parent.id):
        lost = CallbackDispatcher("vendor.app", runner, hasher, parent_id)
        with caplog.at_level(logging.ERROR, logger="endpoint.callbacks.mirroring"):
            refused(lost, Unavailable, ENABLE, partner())
        assert "callbacks.mirrored_partners_parent" in caplog.text


@pytest.mark.parametrize("name", [ENABLE, GET_CUSTOMERS, SET_STATE])
def test_callbacks_that_store_or_filter_by_data_center_require_it(
    mirroring: CallbackDispatcher, name: str
) -> None:
    enable(mirroring)
    payload = {ENABLE: partner(), SET_STATE: lists(enabled=[on(C1, "A")])}.get(name)
    error = refused(mirroring, PayloadError, name, payload, datacenter=None)
    assert "context.datacenter_url is required" in error.message


@pytest.mark.parametrize("name", [GET_PARTNER, RESET])
def test_partner_state_and_reset_need_no_data_center(mirroring: CallbackDispatcher, name: str) -> None:
    assert call(mirroring, name, datacenter=None).status == 200


def test_the_v1_request_prefix_is_the_wrong_type(mirroring: CallbackDispatcher) -> None:
    wrong = dataclasses.replace(
        mirroring_envelope(GET_PARTNER), type="cti.a.p.acgw.request.v1.0~a.p.empty.v1.0"
    )
    with pytest.raises(PayloadError, match="type does not match"):
        mirroring.answer_for_tenant(PRINCIPAL, wrong)


# -- one enablement model per partner ---------------------------------------------------------------------
def test_a_mapped_partner_cannot_be_mirrored(mirroring: CallbackDispatcher, world: World) -> None:
    mapped = partner("Mapped", tenant=POSTMAN_PARTNER_TENANT)
    error = refused(mirroring, Conflict, ENABLE, mapped, tenant=POSTMAN_PARTNER_TENANT)
    assert error.message == "This Acronis tenant is already connected with credentials."
    state = payload_of(call(mirroring, GET_PARTNER, tenant=POSTMAN_PARTNER_TENANT))
    assert state == {"state": "DISABLED"}  # held by the other model: not enabled by mirroring
    for name in (GET_CUSTOMERS, SET_STATE):  # customer callbacks of the other model
        payload = lists(tenant=POSTMAN_PARTNER_TENANT, enabled=[]) if name == SET_STATE else None
        error = refused(mirroring, Conflict, name, payload, tenant=POSTMAN_PARTNER_TENANT)
        assert error.message == "The partner is not enabled."


def test_a_tenant_mirrored_as_a_customer_cannot_be_enabled_as_a_partner(
    mirroring: CallbackDispatcher,
) -> None:
    enable(mirroring)
    set_state(mirroring, enabled=[on(C1, "A")])
    error = refused(mirroring, Conflict, ENABLE, partner(tenant=C1), tenant=C1)
    assert error.message == "This Acronis tenant belongs to another partner."


def test_mirrored_tenants_and_organizations_refuse_the_mapped_callbacks(
    mirroring: CallbackDispatcher, world: World
) -> None:
    mp = Organization.get_by_id(enable(mirroring))
    set_state(mirroring, enabled=[on(C1, "A")])
    mirrored_customer = MirroredTenant.get(MirroredTenant.acronis_tenant_id == C1).organization_id
    before = snapshot()
    for tenant in (P, C1):  # a mapped partner's credentials naming a mirrored tenant
        with pytest.raises(Conflict) as info:
            enablement.write(world.partner.id, world.partner.id, tenant, DATACENTER)
        assert info.value.message == "This Acronis tenant is enabled by mirroring, not with credentials."
    with pytest.raises(Conflict):  # the mirrored partner's own user, trying credentials
        enablement.write(mp.id, mp.id, str(uuid.uuid4()), DATACENTER)
    for read in (mapping.topology, lambda org: mapping.read(org, DATACENTER)):
        with pytest.raises(Conflict):  # customer mapping for a mirrored partner: not enabled
            read(mp.id)
    with pytest.raises(Conflict):
        mapping.write(mp.id, [{"vendor_tenant_id": mirrored_customer, "acronis_tenant_id": C2}], DATACENTER)
    assert snapshot() == before


# -- the ledger: (principal, P, request_id) ------------------------------------------------------------
def test_a_repeated_request_id_answers_the_stored_response(mirroring: CallbackDispatcher) -> None:
    request_id = str(uuid.uuid4())
    first = call(mirroring, ENABLE, partner("A"), request_id=request_id)
    row = RequestLedger.get()
    assert (row.principal, row.organization_id, row.request_id) == (PRINCIPAL, P, request_id)
    again = call(mirroring, ENABLE, partner("A"), request_id=request_id)
    assert again.body == first.body  # the stored answer, response_id included
    assert RequestLedger.select().count() == 1 and MirroredTenant.select().count() == 1
    error = refused(mirroring, Conflict, RESET, request_id=request_id)  # the same id, another request
    assert error.message == "This request_id was already used for a different request."
    refused(mirroring, Conflict, ENABLE, partner("B"), request_id=request_id)  # another payload


def test_the_ledger_key_is_per_principal_and_per_partner_tenant(mirroring: CallbackDispatcher) -> None:
    request_id = str(uuid.uuid4())
    first = call(mirroring, ENABLE, partner("A"), request_id=request_id)
    other_principal = call(mirroring, ENABLE, partner("A"), request_id=request_id, principal="other-key")
    other_tenant = call(
        mirroring, ENABLE, partner("O", tenant=OTHER_P), request_id=request_id, tenant=OTHER_P
    )
    ids = {r.body["response_id"] for r in (first, other_principal, other_tenant)}
    assert len(ids) == 3 and RequestLedger.select().count() == 3
    assert payload_of(first)["vendor_tenant_id"] == payload_of(other_principal)["vendor_tenant_id"]


def test_reads_are_not_recorded(mirroring: CallbackDispatcher) -> None:
    enable(mirroring)
    before = RequestLedger.select().count()
    call(mirroring, GET_PARTNER)
    call(mirroring, GET_CUSTOMERS)
    assert RequestLedger.select().count() == before


# -- concurrency: a unique-index race is a 409, never a 500 --------------------------------------------------
def test_a_partner_created_meanwhile_is_a_conflict_and_rolls_everything_back(
    mirroring: CallbackDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    enable(mirroring)
    real = MirroredTenant.get_or_none
    monkeypatch.setattr(MirroredTenant, "get_or_none", lambda *a, **k: None)  # our read came too early
    error = refused(mirroring, Conflict, ENABLE, partner())
    assert error.message == "This Acronis tenant belongs to another partner."
    monkeypatch.setattr(MirroredTenant, "get_or_none", real)


def burst(runner: DatabaseRunner, d: CallbackDispatcher, calls: list[dict[str, Any]]) -> list[Any]:
    """Run the calls at once on the runner's threads; each result is a response or the exception raised."""

    async def run() -> list[Any]:
        return await asyncio.gather(*(runner.run(call, d, **kw) for kw in calls), return_exceptions=True)

    return asyncio.run(run())


def test_concurrent_enables_create_one_partner(parent: Organization, hasher: RecordingHasher) -> None:
    runner = DatabaseRunner(threads=4)
    try:
        d = CallbackDispatcher("vendor.app", runner, hasher, parent.id)
        results = burst(runner, d, [{"name": ENABLE, "payload": partner()} for _ in range(6)])
    finally:
        runner.shutdown()
    answers = [r for r in results if isinstance(r, CallbackResponse)]
    assert all(isinstance(r, CallbackResponse | Conflict) for r in results), results
    assert answers and {payload_of(r)["vendor_tenant_id"] for r in answers} == {
        str(MirroredTenant.get(MirroredTenant.acronis_tenant_id == P).organization_id)
    }
    assert Organization.select().where(Organization.parent == parent).count() == 1


def test_concurrent_partners_claiming_the_same_customers_never_deadlock(
    parent: Organization, hasher: RecordingHasher
) -> None:
    runner = DatabaseRunner(threads=4)
    try:
        d = CallbackDispatcher("vendor.app", runner, hasher, parent.id)
        enable(d)
        payload_of(call(d, ENABLE, partner("Other", tenant=OTHER_P), tenant=OTHER_P))
        tenants = [str(uuid.UUID(int=i + 1)) for i in range(6)]
        claims = [
            {"name": SET_STATE, "payload": lists(enabled=[on(t, "C") for t in tenants])},
            {
                "name": SET_STATE,
                "payload": lists(tenant=OTHER_P, enabled=[on(t, "C") for t in reversed(tenants)]),
                "tenant": OTHER_P,
            },
        ]
        results = burst(runner, d, claims * 2)
    finally:
        runner.shutdown()
    assert all(isinstance(r, CallbackResponse | Conflict) for r in results), results
    holders = {
        row.partner_tenant_id for row in MirroredTenant.select().where(MirroredTenant.kind == CUSTOMER)
    }
    assert len(holders) == 1  # all or nothing: every customer went to the one partner that won
    assert MirroredTenant.select().where(MirroredTenant.kind == CUSTOMER).count() == 6


def test_mirroring_off_leaves_the_ids_unknown(dispatcher: CallbackDispatcher, world: World) -> None:
    assert dispatcher.needs_end_user("cti.a.p.acgw.callback.v2.0~" + ENABLE)
    with pytest.raises(PayloadError, match="unknown callback_id"):
        call(dispatcher, GET_PARTNER)
    with pytest.raises(PayloadError, match="unknown callback_id"):  # with an end user too
        send(dispatcher, world, mirroring_envelope(ENABLE, partner()))
