"""Mirrored enablement (CyberApp v2), the customer side: customer.mirroring.get_state and set_state.

Customers of the mirrored partner MP are customer organizations directly under it, one record each (models/
mirroring.py). Both callbacks need MP enabled (409 "The partner is not enabled." otherwise); set_state is
all or nothing inside the dispatcher's transaction: every id is checked before anything is written.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from endpoint.callbacks.mirroring import HELD_MESSAGE, create_row, enable_row, enabled_partner, rename
from endpoint.errors import Conflict, Forbidden
from models import CUSTOMER, Organization, OrganizationMapping
from models.db import utcnow
from models.mirroring import MirroredTenant

log = logging.getLogger(__name__)


def get_state(p: str, datacenter_url: str | None) -> list[dict[str, Any]]:
    """The enabled mirrored customers of MP on this data center, by name then Acronis id; an array.

    :raise Conflict: MP is not enabled.
    """
    enabled_partner(p)
    rows = MirroredTenant.select(
        MirroredTenant.organization, MirroredTenant.acronis_tenant_id, MirroredTenant.settings
    ).where(
        (MirroredTenant.partner_tenant_id == p)
        & (MirroredTenant.kind == CUSTOMER)
        & MirroredTenant.enabled
        & (MirroredTenant.datacenter_url == datacenter_url)
    )
    return [
        {"vendor_tenant_id": str(org_id), "acronis_tenant_id": tenant, "settings": json.loads(settings)}
        for org_id, tenant, settings in rows.order_by(MirroredTenant.name, MirroredTenant.acronis_tenant_id)
        .tuples()
        .iterator()
    ]


def set_state(p: str, payload: dict[str, Any], datacenter_url: str | None) -> None:
    """Enable (create or update) and disable mirrored customers of MP, all or nothing. The payload's shape
    (a list present, every id once, settings within limits) was checked before (mirroring_payloads).

    :raise Forbidden: the payload names another partner. :raise Conflict: MP is not enabled, or an id is held
        outside MP (another partner's customer, mirrored or mapped, or a partner tenant).
    """
    if payload["partner_tenant_id"].lower() != p:
        raise Forbidden(reason="customer.mirroring.set_state: partner_tenant_id is not context.tenant_id")
    mp = enabled_partner(p)
    # Sorted, so concurrent requests naming the same tenants insert them in one order: a race ends as a
    # unique-index conflict (409), never as a deadlock between two transactions.
    enabled = sorted(payload.get("enabled") or [], key=lambda item: item["acronis_tenant_id"].lower())
    disabled = [item["acronis_tenant_id"].lower() for item in payload.get("disabled") or []]
    ids = [item["acronis_tenant_id"].lower() for item in enabled] + disabled
    if ids and OrganizationMapping.select().where(OrganizationMapping.acronis_tenant_id.in_(ids)).exists():
        raise Conflict(HELD_MESSAGE, reason="set_state names a tenant mapped with credentials")
    rows = {
        row.acronis_tenant_id: row
        for row in (MirroredTenant.select().where(MirroredTenant.acronis_tenant_id.in_(ids)) if ids else [])
    }
    if any(row.kind != CUSTOMER or row.partner_tenant_id != p for row in rows.values()):
        raise Conflict(HELD_MESSAGE, reason="set_state names a tenant held outside this partner")
    rename(mp, payload["partner_tenant_name"])
    created = 0
    for item in enabled:
        tenant, name, settings = (
            item["acronis_tenant_id"].lower(),
            item["acronis_tenant_name"],
            item.get("settings"),
        )
        row = rows.get(tenant)
        if row is not None:
            enable_row(row, name, settings, datacenter_url)
            continue
        org = Organization.create(name=name, kind=CUSTOMER, parent=mp.organization_id)
        create_row(tenant, org, CUSTOMER, p, name, settings, datacenter_url)
        created += 1
    off = [rows[t] for t in disabled if t in rows and rows[t].enabled]  # unknown or disabled: no-op
    if off:
        MirroredTenant.update(enabled=False, datacenter_url=datacenter_url, updated_at=utcnow()).where(
            MirroredTenant.id.in_([row.id for row in off])
        ).execute()
        Organization.update(active=False).where(
            Organization.id.in_([row.organization_id for row in off])
        ).execute()
    log.info(
        "mirrored customers set: partner_org=%s created=%d enabled=%d disabled=%d",
        mp.organization_id, created, len(enabled), len(off),
    )  # fmt: skip
