"""Tenants: customer organizations provisioned under the instance's partner (synchronous database work).

Each write is idempotent on aps.id: a repeated provision returns the same resource, a repeated
unprovision answers 204. Disabling a tenant sets ``Organization.active = False``, which is what makes its
users fail authentication and its callbacks answer 403 (endpoint/auth/end_user.py, tenancy/subtrees.py).
"""

from __future__ import annotations

import logging
from typing import Any

from endpoint.aps.context import Outcome, dumps, loads_object
from endpoint.aps.payloads import TenantInput, TenantUpdate
from endpoint.errors import Conflict, NotFound
from endpoint.tenancy.organizations import delete_customer
from endpoint.tenancy.users import count_users, insert_user
from models import CUSTOMER, ApsInstance, ApsResource, Organization, db
from models.aps import ACTIVE, DISABLED, TENANT, USER
from models.db import utcnow

log = logging.getLogger(__name__)

TENANT_NOT_FOUND = "Tenant not found."
Extra = dict[str, Any] | None  # logging extra= carrying the transaction id
USERS = "USERS"


def find_tenant(instance_id: str, aps_id: str) -> ApsResource | None:
    """The tenant resource ``aps_id`` of this instance (None: unknown here, or another instance's)."""
    row = ApsResource.get_or_none((ApsResource.aps_id == aps_id.lower()) & (ApsResource.kind == TENANT))
    return row if row is not None and row.instance_id == instance_id else None


def _tenant(instance_id: str, aps_id: str) -> ApsResource:
    row = find_tenant(instance_id, aps_id)
    if row is None:
        raise NotFound(TENANT_NOT_FOUND, reason="no such tenant for this instance")
    return row


def tenant_body(row: ApsResource, organization: Organization | None = None) -> dict[str, Any]:
    """The tenant resource: its properties, the vendor tenant id, status and the USERS counter."""
    org = organization or Organization.get_by_id(row.organization_id)
    limits = loads_object(row.limits)
    users: dict[str, int] = {"usage": count_users(org.id)}
    if limits.get(USERS) is not None:
        users["limit"] = int(limits[USERS])
    return {
        **loads_object(row.properties),
        "aps": {"type": row.aps_type, "id": row.aps_id},
        "tenantId": org.id,
        "name": org.name,
        "status": row.status,
        USERS: users,
    }


def precheck(instance_id: str, operation: str, aps_id: str) -> Outcome | None:
    """Before a tenant job exists: what the request's lookup already decides (no job is created then).

    None: go ahead. An Outcome: the answer itself (DELETE of a tenant unknown anywhere is already done).
    :raise Conflict: provisioning an aps.id another instance (or a user) holds.
    :raise NotFound: changing or deleting a tenant that is not this instance's.
    """
    row = ApsResource.get_or_none(ApsResource.aps_id == aps_id)
    if operation == "tenants.provision":
        if row is not None and (row.instance_id != instance_id or row.kind != TENANT):
            raise Conflict("This aps.id is already in use.", reason="aps.id held by another resource")
        return None
    if row is None and operation == "tenants.unprovision":
        return Outcome(204)
    if row is None or row.kind != TENANT or row.instance_id != instance_id:
        raise NotFound(TENANT_NOT_FOUND, reason="no such tenant for this instance (no job created)")
    return None


def provision(instance_id: str, tenant: TenantInput, name: str, *, extra: Extra = None) -> Outcome:
    """Create the customer (and its admin user when given) under the instance's partner.

    :raise Conflict: aps.id belongs to another instance or is a user; the admin login is taken.
    """
    with db.atomic():
        existing = ApsResource.get_or_none(ApsResource.aps_id == tenant.aps_id)
        if existing is not None:
            if existing.instance_id != instance_id or existing.kind != TENANT:
                raise Conflict("This aps.id is already in use.", reason="aps.id held by another resource")
            return Outcome(200, tenant_body(existing))
        instance = ApsInstance.get_by_id(instance_id)
        org = Organization.create(name=name, kind=CUSTOMER, parent=instance.organization_id)
        properties: dict[str, Any] = {}
        if tenant.account_id:
            properties["account"] = {"aps": {"id": tenant.account_id}}
        if tenant.admin is not None:
            admin = tenant.admin
            user = insert_user(org.id, admin.login, admin.name or admin.login, admin.email or "")
            properties["admin"] = {"login": user.login}
        row = ApsResource.create(
            aps_id=tenant.aps_id,
            kind=TENANT,
            aps_type=tenant.aps_type,
            instance=instance_id,
            organization=org,
            properties=dumps(properties),
            limits=dumps({USERS: tenant.users_limit}),
        )
    log.info("tenant %s provisioned as organization %s", tenant.aps_id, org.id, extra=extra)
    return Outcome(201, tenant_body(row, org))


def configure(instance_id: str, aps_id: str, update: TenantUpdate) -> Outcome:
    """Change the name and/or the USERS limit. :raise NotFound:"""
    with db.atomic():
        row = _tenant(instance_id, aps_id)
        if update.name is not None:
            Organization.update(name=update.name).where(Organization.id == row.organization_id).execute()
        if update.limit_given:
            row.limits = dumps({**loads_object(row.limits), USERS: update.users_limit})
        row.updated_at = utcnow()
        row.save()
    return Outcome(200, tenant_body(row))


def set_enabled(instance_id: str, aps_id: str, enabled: bool, *, extra: Extra = None) -> Outcome:
    """Disable or enable: the organization's ``active`` flag and the resource status. :raise NotFound:"""
    with db.atomic():
        row = _tenant(instance_id, aps_id)
        Organization.update(active=enabled).where(Organization.id == row.organization_id).execute()
        row.status = ACTIVE if enabled else DISABLED
        row.updated_at = utcnow()
        row.save()
    log.info("tenant %s %s", aps_id, "enabled" if enabled else "disabled", extra=extra)
    return Outcome(200, tenant_body(row))


def unprovision(instance_id: str, aps_id: str, *, extra: Extra = None) -> Outcome:
    """Delete the customer with its users and mapping; an unknown tenant is already gone (204).

    :raise NotFound: the aps.id is another instance's tenant.
    """
    with db.atomic():
        row = ApsResource.get_or_none((ApsResource.aps_id == aps_id.lower()) & (ApsResource.kind == TENANT))
        if row is None:
            return Outcome(204)
        if row.instance_id != instance_id:
            raise NotFound(TENANT_NOT_FOUND, reason="tenant of another instance")
        org_id = row.organization_id
        ApsResource.delete().where((ApsResource.tenant == row.aps_id) & (ApsResource.kind == USER)).execute()
        row.delete_instance()
        delete_customer(org_id)
    log.info("tenant %s unprovisioned (organization %s deleted)", aps_id, org_id, extra=extra)
    return Outcome(204)


def get(instance_id: str, aps_id: str) -> Outcome:
    """The tenant with its usage counters. :raise NotFound:"""
    return Outcome(200, tenant_body(_tenant(instance_id, aps_id)))
