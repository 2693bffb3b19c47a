"""Mapped customer enablement (§9.2, security-checklist item 50, §12 defects 3, 5, 15 and 17)."""

from __future__ import annotations

from typing import Any

import pytest

from endpoint.callbacks import mapping
from endpoint.errors import Conflict, Forbidden, PayloadError
from endpoint.tenancy import mappings
from models import Organization, OrganizationMapping
from tests.support.builders import DATACENTER, create_customer, create_org, map_org
from tests.support.callback_builders import (
    DEEP_TENANT,
    FAR_TENANT,
    FREE_TENANT,
    OTHER_CUSTOMER_TENANT,
    OTHER_DATACENTER,
    POSTMAN_CUSTOMER,
    POSTMAN_CUSTOMER_TENANT,
    POSTMAN_PARTNER_TENANT,
    POSTMAN_USERS_TENANT,
    SPARE_TENANT,
    SUB_TENANT,
    World,
    snapshot,
)

NOT_ENABLED = "The partner is not enabled."
HELD = "An Acronis tenant in this request is already mapped to another organization."


def mapped_to(org: Organization | str) -> str | None:
    org_id = org if isinstance(org, str) else org.id
    row = OrganizationMapping.get_or_none(OrganizationMapping.organization == org_id)
    return row.acronis_tenant_id if row else None


def item(org: Organization | str, tenant: str | None = None) -> dict[str, str]:
    entry = {"vendor_tenant_id": org if isinstance(org, str) else org.id}
    if tenant is not None:
        entry["acronis_tenant_id"] = tenant
    return entry


def unmap(org: Organization) -> None:
    OrganizationMapping.delete().where(OrganizationMapping.organization == org.id).execute()


@pytest.mark.parametrize(
    "call",
    [
        lambda org: mapping.topology(org),
        lambda org: mapping.read(org, DATACENTER),
        lambda org: mapping.write(org, [item(POSTMAN_CUSTOMER, POSTMAN_CUSTOMER_TENANT)], DATACENTER),
    ],
    ids=["topology", "read", "write"],
)
def test_a_partner_that_is_not_enabled_gets_409(world: World, call: Any) -> None:
    unmap(world.partner)
    before = snapshot()
    with pytest.raises(Conflict) as info:
        call(world.partner.id)
    assert info.value.message == NOT_ENABLED  # the sample never checked (§12 defect 17)
    with pytest.raises(Forbidden):
        call(world.demo.id)  # a customer is not a partner at all
    assert snapshot() == before


def test_topology_lists_customers_at_any_depth_in_name_then_id_order(world: World) -> None:
    twin_b = create_customer("Demo customer", world.partner, id="00000000-0000-4000-8000-00000000000b")
    twin_a = create_customer("Demo customer", world.sub, id="00000000-0000-4000-8000-00000000000a")
    items = mapping.topology(world.partner.id)["items"]
    customers = [world.deep, world.demo, twin_a, twin_b, world.disabled, world.far, world.postman_customer]
    assert [(i["name"], i["id"]) for i in items] == sorted((c.name, c.id) for c in customers)
    assert [i["id"] for i in items][1:3] == [twin_a.id, twin_b.id]  # same name: id decides
    assert all(set(i) == {"id", "name"} for i in items)


def test_read_lists_every_customer_mapped_here_or_unmapped(world: World) -> None:
    items = mapping.read(world.partner.id, DATACENTER)["items"]
    assert items == [
        {"vendor_tenant_id": world.deep.id, "acronis_tenant_id": DEEP_TENANT},
        {"vendor_tenant_id": world.demo.id, "acronis_tenant_id": POSTMAN_USERS_TENANT},
        {"vendor_tenant_id": world.disabled.id, "acronis_tenant_id": "33333333-3333-4333-8333-333333333333"},
        # "Far customer" is mapped on another data center: omitted (§13 point 10)
        {"vendor_tenant_id": POSTMAN_CUSTOMER},  # unmapped customers are listed too (§12 defect 15)
    ]
    far_view = mapping.read(world.partner.id, OTHER_DATACENTER)["items"]
    assert {"vendor_tenant_id": world.far.id, "acronis_tenant_id": FAR_TENANT} in far_view
    assert all(i["vendor_tenant_id"] != world.other_customer.id for i in items + far_view)


def test_write_maps_the_postman_customer(world: World) -> None:
    mapping.write(world.partner.id, [item(POSTMAN_CUSTOMER, POSTMAN_CUSTOMER_TENANT)], DATACENTER)
    row = OrganizationMapping.get(OrganizationMapping.organization == POSTMAN_CUSTOMER)
    assert (row.acronis_tenant_id, row.datacenter_url) == (POSTMAN_CUSTOMER_TENANT, DATACENTER)


def test_write_unmaps_and_remaps_and_repeats_idempotently(world: World) -> None:
    batch = [item(world.demo), item(world.deep, FREE_TENANT), item(POSTMAN_CUSTOMER, "")]
    mapping.write(world.partner.id, batch, DATACENTER)
    assert mapped_to(world.demo) is None
    assert mapped_to(world.deep) == FREE_TENANT  # re-map is an update, not a conflict
    assert mapped_to(POSTMAN_CUSTOMER) is None  # unmapping an unmapped customer is a no-op
    after = snapshot()
    mapping.write(world.partner.id, batch, DATACENTER)
    assert snapshot() == after


def test_write_reaches_customers_at_depth_three(world: World) -> None:
    mapping.write(world.partner.id, [item(world.deep, SPARE_TENANT)], DATACENTER)
    assert mapped_to(world.deep) == SPARE_TENANT


def test_write_can_swap_or_move_tenants_inside_one_batch(world: World) -> None:
    mapping.write(
        world.partner.id, [item(world.demo, DEEP_TENANT), item(world.deep, POSTMAN_USERS_TENANT)], DATACENTER
    )
    assert (mapped_to(world.demo), mapped_to(world.deep)) == (DEEP_TENANT, POSTMAN_USERS_TENANT)
    mapping.write(world.partner.id, [item(world.demo), item(POSTMAN_CUSTOMER, DEEP_TENANT)], DATACENTER)
    assert (mapped_to(world.demo), mapped_to(POSTMAN_CUSTOMER)) == (None, DEEP_TENANT)


def test_write_moves_a_customer_to_this_datacenter(world: World) -> None:
    mapping.write(world.partner.id, [item(world.far, FAR_TENANT)], DATACENTER)
    row = OrganizationMapping.get(OrganizationMapping.organization == world.far.id)
    assert (row.acronis_tenant_id, row.datacenter_url) == (FAR_TENANT, DATACENTER)


@pytest.mark.parametrize(
    "bad_id",
    ["other partner's customer", "unknown", "sub-partner", "the partner itself", "other partner"],
)
def test_a_batch_whose_last_item_is_not_our_customer_commits_nothing(world: World, bad_id: str) -> None:
    vendor_id = {
        "other partner's customer": world.other_customer.id,
        "unknown": "99999999-9999-4999-8999-999999999999",
        "sub-partner": world.sub.id,
        "the partner itself": world.partner.id,
        "other partner": world.other.id,
    }[bad_id]
    before = snapshot()
    batch = [item(world.demo), item(POSTMAN_CUSTOMER, POSTMAN_CUSTOMER_TENANT), item(vendor_id, FREE_TENANT)]
    with pytest.raises(PayloadError) as info:
        mapping.write(world.partner.id, batch, DATACENTER)
    # Unknown and foreign ids are indistinguishable.
    assert info.value.message == (
        "Malformed request: payload.modified[2].vendor_tenant_id is not a customer of this partner."
    )
    assert snapshot() == before


@pytest.mark.parametrize(
    "held",
    [OTHER_CUSTOMER_TENANT, POSTMAN_PARTNER_TENANT, SUB_TENANT, DEEP_TENANT],
    ids=[
        "other partner's customer",
        "the partner's own tenant",
        "sub-partner's tenant",
        "customer not in batch",
    ],
)
def test_a_tenant_held_outside_the_batch_is_409_and_nothing_is_committed(world: World, held: str) -> None:
    before = snapshot()
    batch = [item(world.demo), item(POSTMAN_CUSTOMER, POSTMAN_CUSTOMER_TENANT), item(world.far, held)]
    with pytest.raises(Conflict) as info:
        mapping.write(world.partner.id, batch, DATACENTER)
    assert info.value.message == HELD
    assert snapshot() == before  # nothing from the batch, and the holder's row untouched (§12 defects 3, 5)


def test_the_same_tenant_twice_in_a_batch_is_409(world: World) -> None:
    before = snapshot()
    with pytest.raises(Conflict) as info:
        mapping.write(
            world.partner.id, [item(world.demo, FREE_TENANT), item(POSTMAN_CUSTOMER, FREE_TENANT)], DATACENTER
        )
    assert info.value.message == "An Acronis tenant appears more than once in this request."
    assert snapshot() == before


def test_the_same_customer_twice_in_a_batch_is_400(world: World) -> None:
    before = snapshot()
    with pytest.raises(PayloadError) as info:
        mapping.write(
            world.partner.id, [item(world.demo, FREE_TENANT), item(world.demo.id.upper())], DATACENTER
        )
    assert info.value.message == "Malformed request: payload.modified[1].vendor_tenant_id is listed twice."
    assert snapshot() == before


def test_a_race_caught_by_the_unique_index_is_409_and_rolls_back(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another transaction took the tenant after our final-state check: Conflict, not IntegrityError."""
    monkeypatch.setattr(mappings, "_check_final_state", lambda desired, current: None)
    before = snapshot()
    with pytest.raises(Conflict) as info:
        mapping.write(
            world.partner.id, [item(world.demo), item(POSTMAN_CUSTOMER, OTHER_CUSTOMER_TENANT)], DATACENTER
        )
    assert info.value.message == HELD
    assert snapshot() == before


def test_an_empty_batch_changes_nothing(world: World) -> None:
    before = snapshot()
    mapping.write(world.partner.id, [], DATACENTER)
    assert snapshot() == before


def test_a_sub_partner_manages_only_its_own_subtree(world: World) -> None:
    mapping.write(world.sub.id, [item(world.deep)], DATACENTER)
    assert mapped_to(world.deep) is None
    with pytest.raises(PayloadError):
        mapping.write(world.sub.id, [item(world.demo)], DATACENTER)
    assert mapped_to(world.demo) == POSTMAN_USERS_TENANT


def test_disabled_customers_are_still_listed_in_topology(world: World) -> None:
    lone = create_org("Lone partner")
    map_org(lone, SPARE_TENANT)
    kid = create_customer("Kid", lone, active=False)
    assert mapping.topology(lone.id) == {"items": [{"id": kid.id, "name": "Kid"}]}
