"""Mirrored enablement (CyberApp v2), the partner side, and what both sides and the mapped model share.

The acting party is the Acronis partner tenant P (``context.tenant_id``): mirroring carries no end-user
credentials. Turning the CyberApp on for P creates (or re-enables) a vendor partner organization MP under
``callbacks.mirrored_partners_parent``; its customers (``mirroring_customers``) are customer organizations
directly under MP. Disabling never deletes: organizations, users and data stay, the organizations are marked
inactive (so their users cannot log in and custom callbacks aimed at them get 403). An Acronis tenant and its
vendor organization are mapped (enablement.write, tenant_mapping.write) or mirrored, never both: the other
model's callbacks get 409. Every function runs inside the dispatcher's transaction, with the ledger row; any
refusal rolls back everything it wrote.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from typing import Any

import peewee as pw

from endpoint.errors import Conflict, Forbidden, Unavailable
from endpoint.tenancy.organizations import NOT_ENABLED_MESSAGE
from models import CUSTOMER, PARTNER, Organization, OrganizationMapping
from models.db import utcnow
from models.mirroring import MirroredTenant

log = logging.getLogger(__name__)

ENABLED, DISABLED = "ENABLED", "DISABLED"
MAPPED_MESSAGE = "This Acronis tenant is already connected with credentials."
HELD_MESSAGE = "This Acronis tenant belongs to another partner."
MIRRORED_MESSAGE = "This Acronis tenant is enabled by mirroring, not with credentials."


def mirrored_partner(tenant_id: str) -> MirroredTenant | None:
    row = MirroredTenant.get_or_none(MirroredTenant.acronis_tenant_id == tenant_id)
    return row if row is not None and row.kind == PARTNER else None


def refuse_if_mirrored(tenant_ids: Collection[str] = (), org_ids: Collection[str] = ()) -> None:
    """For the mapped callbacks: Acronis tenants and vendor organizations held by mirroring are not theirs.

    :raise Conflict: (409) one of ``tenant_ids`` (lower-case) or ``org_ids`` is mirrored.
    """
    held = pw.Value(False)
    if tenant_ids:
        held = held | MirroredTenant.acronis_tenant_id.in_(list(tenant_ids))
    if org_ids:
        held = held | MirroredTenant.organization.in_(list(org_ids))
    if (tenant_ids or org_ids) and MirroredTenant.select().where(held).exists():
        raise Conflict(MIRRORED_MESSAGE, reason="mapped callback on a mirrored tenant or organization")


def partner_get_state(p: str) -> dict[str, Any]:
    """ENABLED (with settings when stored) or DISABLED: never seen, reset, or mapped with credentials."""
    mp = mirrored_partner(p)
    if mp is None or not mp.enabled:
        return {"state": DISABLED}
    state: dict[str, Any] = {"state": ENABLED}
    settings = json.loads(mp.settings)
    if settings:
        state["settings"] = settings
    return state


def partner_enable(
    p: str, payload: dict[str, Any], datacenter_url: str | None, parent_id: str
) -> dict[str, Any]:
    """Create or re-enable MP; the same ``vendor_tenant_id`` every time. Its customers stay as they are.

    :raise Forbidden: the payload names another tenant. :raise Conflict: P is mapped with credentials, or
        mirrored as a customer. :raise Unavailable: the configured parent is not a partner organization.
    """
    if payload["acronis_tenant_id"].lower() != p:
        raise Forbidden(reason="partner.mirroring.enable: acronis_tenant_id is not context.tenant_id")
    if OrganizationMapping.select().where(OrganizationMapping.acronis_tenant_id == p).exists():
        raise Conflict(MAPPED_MESSAGE, reason="mirroring enable for a tenant mapped with credentials")
    name, settings = payload["acronis_tenant_name"], payload.get("settings")
    row = MirroredTenant.get_or_none(MirroredTenant.acronis_tenant_id == p)
    if row is not None and row.kind != PARTNER:
        raise Conflict(HELD_MESSAGE, reason="mirroring enable for a tenant mirrored as a customer")
    if row is not None:
        enable_row(row, name, settings, datacenter_url)
        return {"state": ENABLED, "vendor_tenant_id": str(row.organization_id), "acronis_tenant_id": p}
    parent = Organization.get_or_none(Organization.id == parent_id.lower())
    if parent is None or parent.kind != PARTNER:
        log.error("callbacks.mirrored_partners_parent %s is not a partner organization", parent_id)
        raise Unavailable(reason="callbacks.mirrored_partners_parent names no partner organization")
    org = Organization.create(name=name, kind=PARTNER, parent=parent)
    create_row(p, org, PARTNER, None, name, settings, datacenter_url)
    log.info("mirrored partner created: org=%s", org.id)
    return {"state": ENABLED, "vendor_tenant_id": str(org.id), "acronis_tenant_id": p}


def partner_reset(p: str) -> None:
    """MP and every customer below it, at any depth, to disabled; nothing deleted; unknown P: no-op."""
    mp = mirrored_partner(p)
    if mp is None or not mp.enabled:  # a disabled MP has no enabled customer either: the end state holds
        return
    customers = Organization.subtree(mp.organization_id).where(Organization.kind == CUSTOMER)
    ids = [org.id for org in customers.select(Organization.id)]
    Organization.update(active=False).where(Organization.id.in_([mp.organization_id, *ids])).execute()
    MirroredTenant.update(enabled=False, updated_at=utcnow()).where(
        (MirroredTenant.id == mp.id) | MirroredTenant.organization.in_(ids)
    ).execute()
    log.info("mirrored partner reset: org=%s customers=%d", mp.organization_id, len(ids))


def enabled_partner(p: str) -> MirroredTenant:
    """MP, which the customer callbacks need enabled. :raise Conflict: never mirrored, reset, or mapped."""
    mp = mirrored_partner(p)
    if mp is None or not mp.enabled:
        raise Conflict(
            NOT_ENABLED_MESSAGE, reason="customer mirroring for a partner not mirrored and enabled"
        )
    return mp


# -- rows: one per mirrored tenant, next to its organization -------------------------------------------
def create_row(
    tenant: str,
    org: Organization,
    kind: str,
    partner: str | None,
    name: str,
    settings: dict[str, Any] | None,
    datacenter_url: str | None,
) -> MirroredTenant:
    """The record of a newly mirrored tenant. :raise Conflict: a concurrent request mirrored it first."""
    try:
        with MirroredTenant._meta.database.atomic():  # a savepoint: the unique index answers a race with 409
            return MirroredTenant.create(
                acronis_tenant_id=tenant,
                organization=org,
                kind=kind,
                partner_tenant_id=partner,
                name=name,
                settings=json.dumps(settings or {}),
                datacenter_url=datacenter_url,
            )
    except pw.IntegrityError as e:
        raise Conflict(HELD_MESSAGE, reason="mirrored tenant created concurrently") from e


def enable_row(
    row: MirroredTenant, name: str, settings: dict[str, Any] | None, datacenter_url: str | None
) -> None:
    """Enabled, renamed, settings replaced when sent (kept when absent), the data center stored; a state
    that already holds writes nothing."""
    stored = row.settings if settings is None else json.dumps(settings)
    dc = row.datacenter_url if datacenter_url is None else datacenter_url
    if (row.enabled, row.name, row.settings, row.datacenter_url) == (True, name, stored, dc):
        return
    row.enabled, row.name, row.settings, row.datacenter_url, row.updated_at = True, name, stored, dc, utcnow()
    row.save()
    Organization.update(active=True, name=name).where(Organization.id == row.organization_id).execute()


def rename(row: MirroredTenant, name: str) -> None:
    if row.name != name:
        row.name, row.updated_at = name, utcnow()
        row.save()
        Organization.update(name=name).where(Organization.id == row.organization_id).execute()
