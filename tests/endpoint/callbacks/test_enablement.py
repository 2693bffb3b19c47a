"""Mapped partner enablement (§9.1, security-checklist item 49, §12 defects 4 and 14)."""

from __future__ import annotations

from typing import Any

import pytest

from endpoint.callbacks import enablement
from endpoint.errors import Conflict, Forbidden
from models import Organization, OrganizationMapping
from tests.support.builders import DATACENTER, create_customer, create_org, map_org
from tests.support.callback_builders import (
    FREE_TENANT,
    OTHER_CUSTOMER_TENANT,
    OTHER_TENANT,
    POSTMAN_PARTNER,
    POSTMAN_PARTNER_TENANT,
    SUB_TENANT,
    World,
    snapshot,
)


def mapped_to(org: Organization) -> str | None:
    row = OrganizationMapping.get_or_none(OrganizationMapping.organization == org.id)
    return row.acronis_tenant_id if row else None


def unmap(org: Organization) -> None:
    OrganizationMapping.delete().where(OrganizationMapping.organization == org.id).execute()


def test_read_reports_the_mapping_state(world: World) -> None:
    assert enablement.read(world.partner.id) == {
        "vendor_tenant_id": POSTMAN_PARTNER,
        "acronis_tenant_id": POSTMAN_PARTNER_TENANT,
    }
    unmap(world.partner)
    assert enablement.read(world.partner.id) == {"vendor_tenant_id": POSTMAN_PARTNER}


def test_write_maps_the_postman_partner(world: World) -> None:
    unmap(world.partner)
    enablement.write(POSTMAN_PARTNER, POSTMAN_PARTNER, POSTMAN_PARTNER_TENANT, DATACENTER)
    row = OrganizationMapping.get(OrganizationMapping.organization == POSTMAN_PARTNER)
    assert (row.acronis_tenant_id, row.datacenter_url) == (POSTMAN_PARTNER_TENANT, DATACENTER)


def test_write_with_the_same_ids_again_changes_nothing(world: World) -> None:
    before = snapshot()
    enablement.write(POSTMAN_PARTNER, POSTMAN_PARTNER, POSTMAN_PARTNER_TENANT, DATACENTER)
    enablement.write(POSTMAN_PARTNER, POSTMAN_PARTNER.upper(), POSTMAN_PARTNER_TENANT.upper(), DATACENTER)
    assert snapshot() == before


def test_remap_to_a_different_tenant_is_a_conflict(world: World) -> None:
    before = snapshot()
    with pytest.raises(Conflict) as info:
        enablement.write(POSTMAN_PARTNER, POSTMAN_PARTNER, FREE_TENANT, DATACENTER)
    assert info.value.message == "This organization is already mapped to a different Acronis tenant."
    assert snapshot() == before


def test_vendor_id_of_another_partner_is_forbidden(world: World) -> None:
    unmap(world.partner)
    before = snapshot()
    with pytest.raises(Forbidden) as info:
        enablement.write(world.partner.id, world.other.id, FREE_TENANT, DATACENTER)
    assert info.value.message == "Not allowed for this organization."
    assert snapshot() == before


def test_tenant_held_by_another_org_is_a_conflict_and_that_row_is_untouched(world: World) -> None:
    unmap(world.partner)
    before = snapshot()
    with pytest.raises(Conflict) as info:
        enablement.write(world.partner.id, world.partner.id, OTHER_TENANT, DATACENTER)
    assert info.value.message == "This Acronis tenant is already mapped to another organization."
    assert snapshot() == before
    assert mapped_to(world.other) == OTHER_TENANT


def test_a_concurrent_mapping_surfaces_as_conflict_not_integrity_error(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another transaction mapped ORG between our read and our insert: the unique index answers 409."""
    real = OrganizationMapping.get_or_none
    calls: list[Any] = []

    def stale_first_read(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return None if len(calls) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(OrganizationMapping, "get_or_none", stale_first_read)
    before = snapshot()
    with pytest.raises(Conflict) as info:
        enablement.write(POSTMAN_PARTNER, POSTMAN_PARTNER, FREE_TENANT, DATACENTER)
    assert info.value.message == "This organization is already mapped to a different Acronis tenant."
    monkeypatch.undo()
    assert snapshot() == before
    # The same race with the same tenant is the requested end state: no error.
    monkeypatch.setattr(OrganizationMapping, "get_or_none", stale_first_read)
    calls.clear()
    enablement.write(POSTMAN_PARTNER, POSTMAN_PARTNER, POSTMAN_PARTNER_TENANT, DATACENTER)


@pytest.mark.parametrize("who", ["customer", "disabled partner", "unknown"])
def test_only_active_partners_may_use_enablement(world: World, who: str) -> None:
    org_id = {
        "customer": world.demo.id,
        "disabled partner": create_org("Disabled partner", active=False).id,
        "unknown": "99999999-9999-4999-8999-999999999999",
    }[who]
    before = snapshot()
    for call in (
        lambda: enablement.read(org_id),
        lambda: enablement.write(org_id, org_id, FREE_TENANT, DATACENTER),
        lambda: enablement.reset(org_id),
    ):
        with pytest.raises(Forbidden):
            call()
    assert snapshot() == before


def test_reset_clears_the_partner_and_customers_at_any_depth(world: World) -> None:
    deeper = create_customer("Deepest customer", create_org("Level 4", parent=world.deep.parent))
    map_org(deeper, FREE_TENANT)
    enablement.reset(world.partner.id)
    assert mapped_to(world.partner) is None
    for customer in (world.demo, world.deep, world.disabled, world.far, deeper):
        assert mapped_to(customer) is None, customer.name  # the sample cleared direct children only
    # Sub-partners keep their own enablement; another partner's rows are never touched.
    assert mapped_to(world.sub) == SUB_TENANT
    assert mapped_to(world.other) == OTHER_TENANT
    assert mapped_to(world.other_customer) == OTHER_CUSTOMER_TENANT


def test_reset_of_a_sub_partner_reaches_only_its_own_subtree(world: World) -> None:
    enablement.reset(world.sub.id)
    assert mapped_to(world.sub) is None and mapped_to(world.deep) is None
    assert mapped_to(world.partner) == POSTMAN_PARTNER_TENANT
    assert OrganizationMapping.select().count() == 6


def test_reset_with_nothing_mapped_succeeds(world: World) -> None:
    enablement.reset(world.partner.id)
    before = snapshot()
    enablement.reset(world.partner.id)
    assert snapshot() == before
