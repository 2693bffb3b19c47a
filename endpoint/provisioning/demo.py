"""Deterministic demo tenancy (the public sample's model): nested partners, customers and their users.

The ids the public Postman collection hard-codes are present (acronis-callbacks.md §11): the root
partner, the customer it maps, and a customer mapped to the all-zero tenant id its user callbacks use.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

from models import CUSTOMER, PARTNER, Organization, OrganizationMapping, User
from models.db import db

POSTMAN_PARTNER_ID = "b9c1a52c-280e-45cd-be77-ba927fc42950"
POSTMAN_CUSTOMER_ID = "36271ce5-d0c1-4c15-a09a-ff1ba35c6c0c"
POSTMAN_TENANT_ID = "00000000-0000-0000-0000-000000000000"
DEMO_DATACENTER = "https://eu8-cloud.acronis.com"

_FIRST = (
    "Ada",
    "Alan",
    "Barbara",
    "Claude",
    "Dennis",
    "Edsger",
    "Frances",
    "Grace",
    "Hedy",
    "Ivan",
    "John",
    "Ken",
    "Leslie",
    "Margaret",
    "Niklaus",
    "Radia",
    "Shafi",
    "Tim",
    "Whitfield",
    "Yukihiro",
)
_LAST = (
    "Lovelace",
    "Turing",
    "Liskov",
    "Shannon",
    "Ritchie",
    "Dijkstra",
    "Allen",
    "Hopper",
    "Lamarr",
    "Sutherland",
    "Backus",
    "Thompson",
    "Lamport",
    "Hamilton",
    "Wirth",
    "Perlman",
    "Goldwasser",
    "Berners-Lee",
    "Diffie",
    "Matsumoto",
)


@dataclass(frozen=True, slots=True)
class DemoSummary:
    created: bool
    partners: int
    customers: int
    users: int
    mapped_tenant_id: str


def seed_demo(root: Organization, seed: int = 1) -> DemoSummary:
    """Create the demo tree under ``root`` once; a re-run finds it and changes nothing."""
    with db.atomic():
        if Organization.get_or_none(Organization.id == POSTMAN_CUSTOMER_ID) is not None:
            return _summary(root, created=False)
        rng = random.Random(seed)

        def new_id() -> str:
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))

        def customer(
            name: str, parent: Organization, org_id: str | None = None, users: int = 0
        ) -> Organization:
            org = Organization.create(id=org_id or new_id(), name=name, kind=CUSTOMER, parent=parent)
            for _ in range(users):
                first, last = rng.choice(_FIRST), rng.choice(_LAST)
                login = f"{first}.{last}.{rng.randrange(1000, 9999)}".lower()
                User.create(
                    id=new_id(),
                    login=login,
                    name=f"{first} {last}",
                    email=f"{login}@example.com",
                    organization=org,
                )
            return org

        mapped = customer("Demo Customer", root, users=8)
        OrganizationMapping.create(
            organization=mapped, acronis_tenant_id=POSTMAN_TENANT_ID, datacenter_url=DEMO_DATACENTER
        )
        customer("Postman Customer", root, POSTMAN_CUSTOMER_ID, users=3)
        customer("Fifty Seats Ltd", root, users=50)
        for region in ("North", "South"):
            reseller = Organization.create(id=new_id(), name=f"Reseller {region}", kind=PARTNER, parent=root)
            for index in range(1, 4):
                customer(f"{region} Customer {index}", reseller, users=rng.randrange(2, 7))
            district = Organization.create(
                id=new_id(), name=f"{region} District", kind=PARTNER, parent=reseller
            )
            customer(f"{region} Deep Customer", district, users=2)
    return _summary(root, created=True)


def _summary(root: Organization, created: bool) -> DemoSummary:
    subtree = list(Organization.subtree(root.id))
    customers = [org.id for org in subtree if org.kind == CUSTOMER]
    users = User.select().where(User.organization.in_(customers)).count() if customers else 0
    return DemoSummary(
        created, sum(1 for org in subtree if org.kind == PARTNER), len(customers), users, POSTMAN_TENANT_ID
    )
