"""Subtrees and tenant mappings: customers below a partner, and a tenant on at most one organization."""

from __future__ import annotations

import peewee as pw
import pytest

from endpoint.errors import Conflict, Forbidden
from endpoint.tenancy.mappings import DUPLICATE_MESSAGE, HELD_MESSAGE, customer_mappings, remap
from endpoint.tenancy.organizations import delete_customer, require_enabled_partner
from endpoint.tenancy.subtrees import mapped_customers, not_customers, target_customer
from models import CUSTOMER, Organization, OrganizationMapping, User, db
from models.mirroring import MirroredTenant
from tests.support.builders import DATACENTER, create_customer, create_org, create_user, map_org

T1, T2, T3 = (f"{n}0000000-0000-4000-8000-000000000000" for n in "123")
OTHER_DC = "https://us5-cloud.acronis.com"


@pytest.fixture
def tree(database: pw.Database) -> dict[str, Organization]:
    partner = create_org("Partner")
    reseller = create_org("Reseller", parent=partner)
    orgs = {
        "partner": partner,
        "acme": create_customer("Acme", partner),
        "deep": create_customer("Deep", reseller),
        "mirrored": create_customer("Mirrored", partner),
        "foreign": create_customer("Foreign", create_org("Other partner")),
    }
    MirroredTenant.create(acronis_tenant_id=T3, organization=orgs["mirrored"], kind=CUSTOMER, name="M")
    return orgs


def test_customers_below_a_partner_leave_mirrored_ones_out(tree: dict[str, Organization]) -> None:
    ids = [cid for (cid,) in mapped_customers(tree["partner"].id).select(Organization.id).tuples()]
    assert ids == [tree["acme"].id, tree["deep"].id]
    asked = [tree["foreign"].id, tree["acme"].id, "unknown", tree["deep"].id]
    assert not_customers(tree["partner"].id, asked) == [tree["foreign"].id, "unknown"]


def test_remap_maps_swaps_and_unmaps_all_or_nothing(tree: dict[str, Organization]) -> None:
    acme, deep = tree["acme"].id, tree["deep"].id
    with db.atomic():
        assert remap({acme: T1, deep: T2}, DATACENTER) == 2
        assert remap({acme: T2, deep: T1}, DATACENTER) == 2  # a swap inside one batch
        assert remap({acme: T2, deep: T1}, OTHER_DC) == 2  # same tenants, moved to another data center
        assert remap({acme: T2, deep: T1}, OTHER_DC) == 0
    assert customer_mappings(tree["partner"].id) == [(acme, T2, OTHER_DC), (deep, T1, OTHER_DC)]
    with db.atomic():
        assert remap({deep: None}, OTHER_DC) == 1
    assert customer_mappings(tree["partner"].id)[1] == (deep, None, None)


@pytest.mark.parametrize(
    ("batch", "message"),
    [({"acme": T1, "deep": T1}, DUPLICATE_MESSAGE), ({"acme": T2}, HELD_MESSAGE)],
    ids=["same tenant twice", "held outside the batch"],
)
def test_a_tenant_never_ends_on_two_organizations(
    tree: dict[str, Organization], batch: dict[str, str], message: str
) -> None:
    map_org(tree["foreign"], T2)
    with pytest.raises(Conflict) as info, db.atomic():
        remap({tree[name].id: tenant for name, tenant in batch.items()}, DATACENTER)
    assert info.value.message == message
    assert OrganizationMapping.select().count() == 1


def test_target_customer_is_the_mapped_customer_inside_the_subtree(tree: dict[str, Organization]) -> None:
    map_org(tree["partner"], T3.replace("3", "9", 1))
    map_org(tree["deep"], T1)
    map_org(tree["foreign"], T2)
    assert target_customer(tree["partner"].id, T1.upper()) == tree["deep"].id
    with pytest.raises(Forbidden):
        target_customer(tree["partner"].id, T2)  # another partner's customer
    with pytest.raises(Forbidden):
        target_customer(tree["acme"].id, T1)  # a customer never acts
    require_enabled_partner(tree["partner"].id)
    with pytest.raises(Conflict):
        require_enabled_partner(tree["foreign"].parent_id)  # not mapped itself


def test_delete_customer_takes_its_users_and_mapping(tree: dict[str, Organization]) -> None:
    create_user("ann", tree["acme"])
    map_org(tree["acme"], T1)
    with db.atomic():
        delete_customer(tree["acme"].id)
    assert Organization.get_or_none(Organization.id == tree["acme"].id) is None
    assert User.select().count() == 0 and OrganizationMapping.select().count() == 0
