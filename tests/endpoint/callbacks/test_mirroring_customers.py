"""Mirrored enablement, the customer side (§9.4): get_state's array, set_state all or nothing, disabled
customers keep their data and refuse custom callbacks, and the mapped callbacks leave mirrored ones alone."""

from __future__ import annotations

from typing import Any

import pytest

from endpoint.callbacks import mapping, users
from endpoint.callbacks.dispatch import CallbackDispatcher
from endpoint.errors import Conflict, Forbidden, PayloadError
from models import CUSTOMER, Organization, User
from models.mirroring import MirroredTenant
from tests.endpoint.callbacks.mirrored import (
    C1,
    C2,
    C3,
    ENABLE,
    GET_CUSTOMERS,
    OTHER_P,
    RESET,
    SET_STATE,
    P,
    call,
    customers,
    enable,
    lists,
    off,
    on,
    partner,
    payload_of,
    set_state,
    snapshot,
)
from tests.support.builders import DATACENTER, create_user
from tests.support.callback_builders import POSTMAN_PARTNER_TENANT, POSTMAN_USERS_TENANT, World

OTHER_DC = "https://us2-cloud.acronis.com"


def org_of(tenant: str) -> Organization:
    return Organization.get_by_id(
        MirroredTenant.get(MirroredTenant.acronis_tenant_id == tenant).organization_id
    )


def refused(d: CallbackDispatcher, error: type[Exception], payload: dict[str, Any], **kw: Any) -> Any:
    """set_state, expect ``error``, and check that nothing was written, the ledger included."""
    before = snapshot()
    with pytest.raises(error) as info:
        call(d, SET_STATE, payload, **kw)
    assert snapshot() == before
    return info.value


def test_customers_are_created_directly_under_the_partner_and_listed_as_an_array(
    mirroring: CallbackDispatcher,
) -> None:
    mp = enable(mirroring)
    got = call(mirroring, GET_CUSTOMERS)
    assert got.body["type"] == "cti.a.p.acgw.response.v1.1~a.p.customer.mirroring.get_state.ok.v1.0"
    assert payload_of(got) == []  # no customers: an empty array
    answer = set_state(mirroring, enabled=[on(C2, "Beta"), on(C1, "Alpha", settings={"seats": 5})])
    assert answer.body["type"] == "cti.a.p.acgw.response.v1.1~a.p.customer.mirroring.set_state.ok.v1.0"
    assert "payload" not in answer.body
    alpha, beta = org_of(C1), org_of(C2)
    assert (alpha.kind, alpha.parent_id, alpha.name, alpha.active) == (CUSTOMER, mp, "Alpha", True)
    assert (beta.kind, beta.parent_id, beta.name) == (CUSTOMER, mp, "Beta")
    assert customers(mirroring) == [  # by name, with the stored settings or {}
        {"vendor_tenant_id": alpha.id, "acronis_tenant_id": C1, "settings": {"seats": 5}},
        {"vendor_tenant_id": beta.id, "acronis_tenant_id": C2, "settings": {}},
    ]
    assert {row.datacenter_url for row in MirroredTenant.select()} == {DATACENTER}


def test_enabled_again_updates_name_and_settings_and_keeps_the_organization(
    mirroring: CallbackDispatcher,
) -> None:
    enable(mirroring)
    set_state(mirroring, enabled=[on(C1, "Alpha", settings={"seats": 5})])
    alpha = org_of(C1)
    set_state(mirroring, enabled=[on(C1, "Alpha Ltd")])  # settings absent: kept
    assert org_of(C1).id == alpha.id and org_of(C1).name == "Alpha Ltd"
    assert customers(mirroring)[0]["settings"] == {"seats": 5}
    set_state(mirroring, enabled=[on(C1, "Alpha Ltd", settings={"tier": "gold"})])  # sent: replaced
    assert customers(mirroring)[0]["settings"] == {"tier": "gold"}


def test_disabled_customers_keep_their_data_and_leave_the_list(mirroring: CallbackDispatcher) -> None:
    enable(mirroring)
    set_state(mirroring, enabled=[on(C1, "Alpha"), on(C2, "Beta")])
    alpha = org_of(C1)
    create_user("alpha-admin", alpha, "pw-123456789012")
    set_state(mirroring, disabled=[off(C1), off(C3)])  # C3 was never enabled: a no-op
    assert [c["acronis_tenant_id"] for c in customers(mirroring)] == [C2]
    assert not org_of(C1).active and User.select().where(User.organization == alpha).exists()
    assert not MirroredTenant.select().where(MirroredTenant.acronis_tenant_id == C3).exists()
    before = snapshot(ledger=False)
    set_state(mirroring, disabled=[off(C1)])  # already disabled: nothing changes
    assert snapshot(ledger=False) == before
    set_state(mirroring, enabled=[on(C1, "Alpha")])
    assert org_of(C1).id == alpha.id and org_of(C1).active  # the same organization, users and all
    assert [c["acronis_tenant_id"] for c in customers(mirroring)] == [C1, C2]


def test_both_lists_in_one_request_and_the_partner_name_updated(mirroring: CallbackDispatcher) -> None:
    mp = enable(mirroring, "Acme")
    set_state(mirroring, enabled=[on(C1, "Alpha")])
    call(mirroring, SET_STATE, lists("Acme Renamed", enabled=[on(C2, "Beta")], disabled=[off(C1)]))
    assert [c["acronis_tenant_id"] for c in customers(mirroring)] == [C2]
    assert Organization.get_by_id(mp).name == "Acme Renamed"
    assert MirroredTenant.get(MirroredTenant.acronis_tenant_id == P).name == "Acme Renamed"


def test_get_state_lists_the_customers_of_this_data_center(mirroring: CallbackDispatcher) -> None:
    enable(mirroring)
    set_state(mirroring, enabled=[on(C1, "Alpha")])
    call(mirroring, SET_STATE, lists(enabled=[on(C2, "Beta")]), datacenter=OTHER_DC)
    assert [c["acronis_tenant_id"] for c in customers(mirroring)] == [C1]
    assert [c["acronis_tenant_id"] for c in customers(mirroring, datacenter=OTHER_DC)] == [C2]


def test_the_partner_must_be_enabled(mirroring: CallbackDispatcher) -> None:
    for name, payload in ((GET_CUSTOMERS, None), (SET_STATE, lists(enabled=[on(C1, "A")]))):
        before = snapshot()
        with pytest.raises(Conflict) as info:  # never mirrored
            call(mirroring, name, payload)
        assert info.value.message == "The partner is not enabled." and snapshot() == before
    enable(mirroring)
    call(mirroring, RESET)
    error = refused(mirroring, Conflict, lists(enabled=[on(C1, "A")]))  # reset
    assert error.message == "The partner is not enabled."


def test_the_payload_must_name_the_calling_partner(mirroring: CallbackDispatcher) -> None:
    enable(mirroring)
    refused(mirroring, Forbidden, lists(tenant=OTHER_P, enabled=[on(C1, "A")]))


@pytest.mark.parametrize(
    "items",
    [{}, {"enabled": [on(C1, "A"), on(C1, "B")]}, {"enabled": [on(C1, "A")], "disabled": [off(C1)]}],
    ids=["neither-list", "twice-in-one-list", "in-both-lists"],
)
def test_malformed_lists_are_400(mirroring: CallbackDispatcher, items: dict[str, Any]) -> None:
    enable(mirroring)
    refused(mirroring, PayloadError, lists(**items))


def test_ids_held_outside_the_partner_are_409_and_nothing_is_written(
    mirroring: CallbackDispatcher, world: World
) -> None:
    enable(mirroring)
    set_state(mirroring, enabled=[on(C1, "Alpha")])
    payload_of(call(mirroring, ENABLE, partner("Other", tenant=OTHER_P), tenant=OTHER_P))
    held = {
        "another partner's mirrored customer": C1,
        "a tenant mapped with credentials": POSTMAN_USERS_TENANT,
        "a mapped partner": POSTMAN_PARTNER_TENANT,
        "a mirrored partner": P,
        "the partner itself": OTHER_P,
    }
    for tenant in held.values():
        for items in ({"enabled": [on(C2, "New"), on(tenant, "X")]}, {"disabled": [off(C3), off(tenant)]}):
            error = refused(mirroring, Conflict, lists(tenant=OTHER_P, **items), tenant=OTHER_P)
            assert error.message == "This Acronis tenant belongs to another partner."
    assert not MirroredTenant.select().where(MirroredTenant.acronis_tenant_id == C2).exists()


# -- custom callbacks (§9.3) and the mapped model ------------------------------------------------------
def test_custom_callbacks_reach_enabled_mirrored_customers_only(mirroring: CallbackDispatcher) -> None:
    mp = enable(mirroring)
    set_state(mirroring, enabled=[on(C1, "A")])
    create_user("alpha-user", org_of(C1), "pw-123456789012")
    assert [u["name"] for u in users.users_read(mp, C1)["items"]] == ["alpha-user"]
    set_state(mirroring, disabled=[off(C1)])
    with pytest.raises(Forbidden):  # a disabled mirrored customer
        users.users_read(mp, C1)
    set_state(mirroring, enabled=[on(C1, "A")])
    call(mirroring, RESET)
    enable(mirroring)
    with pytest.raises(Forbidden):  # a customer of a partner that was reset
        users.users_read(mp, C1)


def test_a_customer_of_a_disabled_mirrored_partner_is_refused_on_its_own_account(
    mirroring: CallbackDispatcher, parent: Organization
) -> None:
    """Even if its own record and organization were still enabled, the disabled partner decides."""
    enable(mirroring)
    set_state(mirroring, enabled=[on(C1, "A")])
    assert users.users_read(parent.id, C1)["items"] == []  # reachable from the parent above MP
    MirroredTenant.update(enabled=False).where(MirroredTenant.acronis_tenant_id == P).execute()
    assert org_of(C1).active and org_of(C1).mirror.get().enabled
    with pytest.raises(Forbidden):
        users.users_read(parent.id, C1)


def test_a_mapped_partner_above_neither_lists_nor_maps_mirrored_customers(
    world: World, runner: Any, hasher: Any
) -> None:
    """The parent of mirrored partners may itself be mapped: mirrored organizations stay out of its lists."""
    d = CallbackDispatcher("vendor.app", runner, hasher, world.partner.id)
    enable(d)
    set_state(d, enabled=[on(C1, "Alpha")])
    mirrored = org_of(C1).id
    listed = [item["id"] for item in mapping.topology(world.partner.id)["items"]]
    assert mirrored not in listed and world.demo.id in listed
    read = [item["vendor_tenant_id"] for item in mapping.read(world.partner.id, DATACENTER)["items"]]
    assert mirrored not in read and world.postman_customer.id in read
    before = snapshot()
    for item in (
        {"vendor_tenant_id": mirrored, "acronis_tenant_id": C2},  # a mirrored organization
        {"vendor_tenant_id": world.postman_customer.id, "acronis_tenant_id": C1},  # a mirrored tenant
        {"vendor_tenant_id": world.postman_customer.id, "acronis_tenant_id": P},
    ):
        with pytest.raises(Conflict) as info:
            mapping.write(world.partner.id, [item], DATACENTER)
        assert info.value.message == "This Acronis tenant is enabled by mirroring, not with credentials."
    assert snapshot() == before
