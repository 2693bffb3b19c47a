"""Tenants: provisioned under the instance's partner, idempotent on aps.id, disabled = users locked out."""

from __future__ import annotations

import uuid

import peewee as pw
import pytest

from endpoint.aps import tenants
from endpoint.aps.payloads import AdminInput, TenantInput, TenantUpdate
from endpoint.errors import Conflict, Forbidden, NotFound
from endpoint.tenancy.subtrees import target_customer
from models import CUSTOMER, ApsResource, Organization, OrganizationMapping, User
from tests.support.aps_builders import TENANT_TYPE, bound_instance
from tests.support.builders import create_user

OTHER_INSTANCE = "9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f"


def spec(aps_id: str | None = None, **fields: object) -> TenantInput:
    values: dict[str, object] = dict(name="Acme", account_id=None, users_limit=None, admin=None)
    values.update(fields)
    return TenantInput(aps_id=aps_id or str(uuid.uuid4()), aps_type=TENANT_TYPE, **values)  # type: ignore[arg-type]


def test_provision_creates_the_customer_and_its_admin(database: pw.Database) -> None:
    bound = bound_instance()
    tenant = spec(admin=AdminInput("Boss", "The Boss", "boss@example.com"), users_limit=3)
    outcome = tenants.provision(bound.instance.instance_id, tenant, "Acme")
    assert outcome.status == 201 and outcome.body is not None
    org = Organization.get_by_id(outcome.body["tenantId"])
    assert (org.kind, org.parent_id, org.name) == (CUSTOMER, bound.partner.id, "Acme")
    assert User.get(User.login == "boss").organization_id == org.id
    assert outcome.body["USERS"] == {"usage": 1, "limit": 3}
    assert outcome.body["admin"] == {"login": "boss"}
    assert outcome.body["aps"] == {"type": TENANT_TYPE, "id": tenant.aps_id}


def test_a_repeated_provision_returns_the_same_resource(database: pw.Database) -> None:
    bound = bound_instance()
    tenant = spec()
    first = tenants.provision(bound.instance.instance_id, tenant, "Acme")
    again = tenants.provision(bound.instance.instance_id, tenant, "Other name")
    assert again.status == 200 and again.body == first.body
    assert Organization.select().where(Organization.kind == CUSTOMER).count() == 1


def test_an_aps_id_of_another_instance_is_a_conflict(database: pw.Database) -> None:
    bound = bound_instance()
    other = bound_instance(OTHER_INSTANCE, key="acme-00000000000000000000000000000000", partner=bound.partner)
    tenant = spec()
    tenants.provision(other.instance.instance_id, tenant, "Theirs")
    with pytest.raises(Conflict):
        tenants.provision(bound.instance.instance_id, tenant, "Mine")
    with pytest.raises(NotFound):
        tenants.get(bound.instance.instance_id, tenant.aps_id)
    with pytest.raises(NotFound):
        tenants.unprovision(bound.instance.instance_id, tenant.aps_id)


def test_a_taken_admin_login_rolls_everything_back(database: pw.Database) -> None:
    bound = bound_instance()
    create_user("boss", bound.partner)
    with pytest.raises(Conflict):
        tenants.provision(bound.instance.instance_id, spec(admin=AdminInput("BOSS")), "Acme")
    assert ApsResource.select().count() == 0
    assert Organization.select().where(Organization.kind == CUSTOMER).count() == 0


def test_configure_changes_name_and_limit(database: pw.Database) -> None:
    bound = bound_instance()
    tenant = spec(users_limit=3)
    tenants.provision(bound.instance.instance_id, tenant, "Acme")
    body = tenants.configure(
        bound.instance.instance_id, tenant.aps_id, TenantUpdate("Acme Ltd", 10, True)
    ).body
    assert body is not None and body["name"] == "Acme Ltd" and body["USERS"]["limit"] == 10
    body = tenants.configure(bound.instance.instance_id, tenant.aps_id, TenantUpdate(None, None, False)).body
    assert body is not None and body["USERS"]["limit"] == 10
    body = tenants.configure(bound.instance.instance_id, tenant.aps_id, TenantUpdate(None, None, True)).body
    assert body is not None and "limit" not in body["USERS"]


def test_disable_locks_the_tenant_out_of_callbacks_and_enable_lets_it_back(database: pw.Database) -> None:
    bound = bound_instance()
    tenant = spec()
    org_id = tenants.provision(bound.instance.instance_id, tenant, "Acme").body["tenantId"]  # type: ignore[index]
    OrganizationMapping.create(
        organization=org_id, acronis_tenant_id=str(uuid.uuid4()), datacenter_url="https://dc"
    )
    acronis_id = OrganizationMapping.get(OrganizationMapping.organization == org_id).acronis_tenant_id
    assert target_customer(bound.partner.id, acronis_id) == org_id
    body = tenants.set_enabled(bound.instance.instance_id, tenant.aps_id, False).body
    assert body is not None and body["status"] == "disabled"
    assert not Organization.get_by_id(org_id).active
    with pytest.raises(Forbidden):  # the partner's user callbacks on a disabled tenant: 403
        target_customer(bound.partner.id, acronis_id)
    tenants.set_enabled(bound.instance.instance_id, tenant.aps_id, True)
    assert target_customer(bound.partner.id, acronis_id) == org_id


def test_unprovision_deletes_everything_and_repeats_are_204(database: pw.Database) -> None:
    bound = bound_instance()
    tenant = spec(admin=AdminInput("boss"))
    org_id = tenants.provision(bound.instance.instance_id, tenant, "Acme").body["tenantId"]  # type: ignore[index]
    OrganizationMapping.create(
        organization=org_id, acronis_tenant_id=str(uuid.uuid4()), datacenter_url="https://dc"
    )
    assert tenants.unprovision(bound.instance.instance_id, tenant.aps_id).status == 204
    assert Organization.get_or_none(Organization.id == org_id) is None
    assert User.select().count() == 0 and OrganizationMapping.select().count() == 0
    assert ApsResource.select().count() == 0
    assert tenants.unprovision(bound.instance.instance_id, tenant.aps_id).status == 204
