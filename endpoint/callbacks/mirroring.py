"""Mirrored enablement (CyberApp v2): the five partner/customer.mirroring callbacks.

The acting party is the Acronis partner tenant P (``context.tenant_id``): mirroring carries no end-user
credentials. Turning the CyberApp on for P creates (or re-enables) a vendor partner organization MP under
``callbacks.mirrored_partners_parent``; its customers are mirrored as customer organizations directly
under MP. Disabling never deletes: organizations, users and data stay, the organizations are marked
inactive (so their users cannot log in and custom callbacks aimed at them get 403). A partner is either
mapped (enablement.write) or mirrored, never both: the other model's callbacks get 409. Each function runs
inside the dispatcher's transaction, with the ledger row; any refusal rolls back everything it wrote.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import peewee as pw

from endpoint.errors import Conflict, Forbidden, PayloadError, Unavailable
from models import CUSTOMER, PARTNER, Organization, OrganizationMapping
from models.db import utcnow
from models.mirroring import MirroredTenant

log = logging.getLogger(__name__)

ENABLED, DISABLED = "ENABLED", "DISABLED"
MAPPED_MESSAGE = "This Acronis tenant is already connected with credentials."
NOT_ENABLED_MESSAGE = "The partner is not enabled."
HELD_MESSAGE = "This Acronis tenant belongs to another partner."
MIRRORED_MESSAGE = "This Acronis tenant is enabled by mirroring, not with credentials."


def mirrored_partner(tenant_id: str) -> MirroredTenant | None:
    row = MirroredTenant.get_or_none(MirroredTenant.acronis_tenant_id == tenant_id)
    return row if row is not None and row.kind == PARTNER else None


def refuse_if_mirrored(acronis_tenant_id: str | None, org_id: str) -> None:
    """For the mapped callbacks: a tenant or organization held by mirroring is not theirs to touch.

    :raise Conflict: (409) either is a mirrored one.
    """
    held = MirroredTenant.select().where(MirroredTenant.organization == org_id)
    if acronis_tenant_id is not None:
        held = MirroredTenant.select().where(
            (MirroredTenant.organization == org_id) | (MirroredTenant.acronis_tenant_id == acronis_tenant_id)
        )
    if held.exists():
        raise Conflict(MIRRORED_MESSAGE, reason="mapped callback on a mirrored tenant")


# -- partner side ---------------------------------------------------------------------------------------
def partner_get_state(p: str) -> dict[str, Any]:
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
    """Create or re-enable MP. :raise Forbidden: the payload names another tenant. :raise Conflict: P is
    mapped with credentials, or held as a customer. :raise Unavailable: the configured parent is missing."""
    if payload["acronis_tenant_id"].lower() != p:
        raise Forbidden(reason="partner.mirroring.enable: acronis_tenant_id is not context.tenant_id")
    if OrganizationMapping.select().where(OrganizationMapping.acronis_tenant_id == p).exists():
        raise Conflict(MAPPED_MESSAGE, reason="mirroring enable for a mapped partner")
    name, now = payload["acronis_tenant_name"], utcnow()
    row = MirroredTenant.get_or_none(MirroredTenant.acronis_tenant_id == p)
    if row is not None and row.kind != PARTNER:
        raise Conflict(HELD_MESSAGE, reason="mirroring enable for a tenant mirrored as a customer")
    if row is None:
        parent = Organization.get_or_none(Organization.id == parent_id)
        if parent is None or parent.kind != PARTNER:
            log.error("callbacks.mirrored_partners_parent %r is not a partner organization", parent_id)
            raise Unavailable(reason="callbacks.mirrored_partners_parent names no partner organization")
        org = Organization.create(name=name, kind=PARTNER, parent=parent)
        row = _create(p, org, PARTNER, None, name, payload.get("settings"), datacenter_url)
        log.info("mirrored partner created: org=%s", org.id)
    else:
        _update(row, name, payload.get("settings"), datacenter_url, now)
    return {"state": ENABLED, "vendor_tenant_id": str(row.organization_id), "acronis_tenant_id": p}


def partner_reset(p: str) -> None:
    """MP and every customer below it, at any depth, to disabled; nothing deleted; unknown P: no-op."""
    mp = mirrored_partner(p)
    if mp is None:
        return
    now = utcnow()
    customers = Organization.subtree(mp.organization_id).where(Organization.kind == CUSTOMER)
    ids = [org.id for org in customers.select(Organization.id)]
    Organization.update(active=False).where(Organization.id.in_([mp.organization_id, *ids])).execute()
    MirroredTenant.update(enabled=False, updated_at=now).where(
        (MirroredTenant.id == mp.id) | MirroredTenant.organization.in_(ids)
    ).execute()
    log.info("mirrored partner reset: org=%s customers=%d", mp.organization_id, len(ids))


# -- customer side --------------------------------------------------------------------------------------
def _enabled_partner(p: str) -> MirroredTenant:
    mp = mirrored_partner(p)
    if mp is None or not mp.enabled:
        raise Conflict(
            NOT_ENABLED_MESSAGE, reason="customer mirroring for a partner not mirrored and enabled"
        )
    return mp


def customer_get_state(p: str, datacenter_url: str | None) -> list[dict[str, Any]]:
    _enabled_partner(p)
    rows = MirroredTenant.select().where(
        (MirroredTenant.partner_tenant_id == p) & (MirroredTenant.kind == CUSTOMER) & MirroredTenant.enabled
    )
    if datacenter_url is not None:
        rows = rows.where(MirroredTenant.datacenter_url == datacenter_url)
    return [
        {
            "vendor_tenant_id": str(row.organization_id),
            "acronis_tenant_id": row.acronis_tenant_id,
            "settings": json.loads(row.settings),
        }
        for row in rows.order_by(MirroredTenant.name, MirroredTenant.acronis_tenant_id)
    ]


def customer_set_state(p: str, payload: dict[str, Any], datacenter_url: str | None) -> None:
    """Enable (create or update) and disable mirrored customers of MP, all or nothing.

    :raise Forbidden: the payload names another partner. :raise Conflict: MP is not enabled, or an id is
        held outside MP. :raise PayloadError: neither list, or an id twice.
    """
    if payload["partner_tenant_id"].lower() != p:
        raise Forbidden(reason="customer.mirroring.set_state: partner_tenant_id is not context.tenant_id")
    enabled, disabled = payload.get("enabled"), payload.get("disabled")
    if enabled is None and disabled is None:
        raise PayloadError("Malformed request: payload needs enabled or disabled.")
    ids = [item["acronis_tenant_id"].lower() for item in (enabled or []) + (disabled or [])]
    if len(ids) != len(set(ids)):
        raise PayloadError("Malformed request: a tenant id appears twice.")
    mp = _enabled_partner(p)
    now = utcnow()
    mapped = OrganizationMapping.select().where(OrganizationMapping.acronis_tenant_id.in_(ids))
    if ids and mapped.exists():
        raise Conflict(HELD_MESSAGE, reason="set_state names a tenant mapped with credentials")
    rows = {
        row.acronis_tenant_id: row
        for row in MirroredTenant.select().where(MirroredTenant.acronis_tenant_id.in_(ids))
    }
    if any(row.kind != CUSTOMER or row.partner_tenant_id != p for row in rows.values()):
        raise Conflict(HELD_MESSAGE, reason="set_state names a tenant held outside this partner")
    _rename(mp, payload["partner_tenant_name"], now)
    for item in enabled or []:
        tenant = item["acronis_tenant_id"].lower()
        row = rows.get(tenant)
        if row is None:
            org = Organization.create(
                name=item["acronis_tenant_name"], kind=CUSTOMER, parent=mp.organization_id
            )
            _create(
                tenant, org, CUSTOMER, p, item["acronis_tenant_name"], item.get("settings"), datacenter_url
            )
        else:
            _update(row, item["acronis_tenant_name"], item.get("settings"), datacenter_url, now)
    for item in disabled or []:
        row = rows.get(item["acronis_tenant_id"].lower())
        if row is not None and row.enabled:  # an unknown id is a no-op: the end state holds
            row.enabled, row.updated_at = False, now
            row.save()
            Organization.update(active=False).where(Organization.id == row.organization_id).execute()


# -- rows -----------------------------------------------------------------------------------------------
def _create(
    tenant: str,
    org: Organization,
    kind: str,
    partner: str | None,
    name: str,
    settings: dict[str, Any] | None,
    datacenter_url: str | None,
) -> MirroredTenant:
    try:
        with MirroredTenant._meta.database.atomic():  # a savepoint: a concurrent twin becomes a 409
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


def _update(
    row: MirroredTenant, name: str, settings: dict[str, Any] | None, datacenter_url: str | None, now: Any
) -> None:
    row.enabled, row.name, row.updated_at = True, name, now
    if settings is not None:  # replaced as a whole when sent, kept when absent
        row.settings = json.dumps(settings)
    if datacenter_url is not None:
        row.datacenter_url = datacenter_url
    row.save()
    Organization.update(active=True, name=name).where(Organization.id == row.organization_id).execute()


def _rename(row: MirroredTenant, name: str, now: Any) -> None:
    if row.name != name:
        row.name, row.updated_at = name, now
        row.save()
        Organization.update(name=name).where(Organization.id == row.organization_id).execute()
