"""A small two-partner tenancy for HTTP tests, and a snapshot of every table to prove nothing changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models import ALL_MODELS, Organization, User
from tests.support.builders import create_consumer, create_customer, create_org, create_user, map_org

ADMIN_PASSWORD = "admin-password"
TENANT_A = "0dd47bbb-d065-447f-ab7c-06e05887078b"
TENANT_B = "954ef80f-5acb-405b-81df-e850606b406d"
PARTNER_TENANT = "6a1c7c1e-8d5f-4a9b-9c2e-4d6f3f9c0e7d"


@dataclass(frozen=True)
class Tenancy:
    partner: Organization
    admin: User
    customer: Organization
    customer_users: list[User]
    other_partner: Organization
    other_admin: User
    other_customer: Organization


def build_tenancy() -> Tenancy:
    create_consumer()
    partner = create_org("Acme Partner")
    admin = create_user("Admin", partner, ADMIN_PASSWORD)
    customer = create_customer("Customer A", partner)
    map_org(customer, TENANT_A)
    users = [create_user(f"user{i}", customer, name=f"User {i}") for i in range(3)]
    other = create_org("Other Partner")
    other_admin = create_user("other", other, ADMIN_PASSWORD)
    other_customer = create_customer("Customer B", other)
    map_org(other_customer, TENANT_B)
    return Tenancy(partner, admin, customer, users, other, other_admin, other_customer)


def snapshot() -> dict[str, Any]:
    """Every row of every table except the nonce store (which a valid request legitimately fills)."""
    state: dict[str, Any] = {}
    for model in ALL_MODELS:
        if model.__name__ == "Nonce":
            continue
        rows = model.select().order_by(*model._meta.sorted_fields[:1]).dicts()
        state[model.__name__] = [tuple(sorted((k, str(v)) for k, v in row.items())) for row in rows]
    return state
