"""Demo tenancy: deterministic, nested, with the Postman collection's ids, created once."""

from __future__ import annotations

import peewee as pw

from endpoint.provisioning.demo import (
    POSTMAN_CUSTOMER_ID,
    POSTMAN_PARTNER_ID,
    POSTMAN_TENANT_ID,
    seed_demo,
)
from endpoint.provisioning.tenancy import ensure_root_partner
from models import CUSTOMER, Organization, OrganizationMapping, User


def test_demo_tree_has_the_collection_ids_and_nested_customers(database: pw.Database) -> None:
    root, _ = ensure_root_partner("Vendor Root", POSTMAN_PARTNER_ID)
    summary = seed_demo(root, seed=3)
    assert summary.created and summary.customers >= 10 and summary.partners >= 4
    customers = {org.id: org for org in Organization.customers_of(root.id)}
    assert POSTMAN_CUSTOMER_ID in customers
    mapped = OrganizationMapping.get(OrganizationMapping.acronis_tenant_id == POSTMAN_TENANT_ID)
    assert mapped.organization_id in customers  # the all-zero tenant maps to a customer of the partner
    deep = Organization.get(Organization.name == "North Deep Customer")
    assert deep.kind == CUSTOMER and deep.parent.parent.parent_id == root.id  # depth 3
    assert (
        User.select()
        .where(User.organization == Organization.get(Organization.name == "Fifty Seats Ltd"))
        .count()
        == 50
    )


def test_demo_is_created_once(database: pw.Database) -> None:
    root, _ = ensure_root_partner("Vendor Root", POSTMAN_PARTNER_ID)
    seed_demo(root)
    before = (Organization.select().count(), User.select().count())
    assert not seed_demo(root).created
    assert (Organization.select().count(), User.select().count()) == before
