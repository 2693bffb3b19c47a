"""Mapped customer enablement: topology.read, tenant_mapping.read and tenant_mapping.write (§9.2)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import peewee as pw

from endpoint.callbacks.enablement import require_enabled_partner
from endpoint.callbacks.mirroring import refuse_if_mirrored
from endpoint.errors import Conflict, PayloadError
from models import CUSTOMER, Organization, OrganizationMapping, db
from models.mirroring import MirroredTenant

log = logging.getLogger(__name__)

HELD_MESSAGE = "An Acronis tenant in this request is already mapped to another organization."
DUPLICATE_MESSAGE = "An Acronis tenant appears more than once in this request."


def topology(org_id: str, kind: str | None = None) -> dict[str, Any]:
    """{"items": [{"id", "name"}]} for every customer below ORG at any depth (mirrored ones left out),
    ordered by name then id.

    :raise Forbidden: ORG is not an active partner. :raise Conflict: ORG is not enabled.
    """
    require_enabled_partner(org_id, kind)
    rows = (
        _mapped_model(Organization.customers_of(org_id)).select(Organization.id, Organization.name).tuples()
    )
    return {"items": [{"id": cid, "name": name} for cid, name in rows]}


def read(org_id: str, datacenter_url: str, kind: str | None = None) -> dict[str, Any]:
    """Every customer of ORG: mapped on this data center with its tenant, unmapped with its id only.

    Customers mapped on another data center are left out so they cannot be mapped twice (§13 point 10),
    and so are mirrored customers.
    :raise Forbidden: ORG is not an active partner. :raise Conflict: ORG is not enabled.
    """
    require_enabled_partner(org_id, kind)
    rows = (
        _mapped_model(Organization.customers_of(org_id))
        .select(Organization.id, OrganizationMapping.acronis_tenant_id, OrganizationMapping.datacenter_url)
        .join(
            OrganizationMapping, pw.JOIN.LEFT_OUTER, on=(OrganizationMapping.organization == Organization.id)
        )
        .tuples()
    )
    items: list[dict[str, str]] = []
    for cid, acronis_id, mapped_dc in rows:
        if acronis_id is None:
            items.append({"vendor_tenant_id": cid})
        elif mapped_dc == datacenter_url:
            items.append({"vendor_tenant_id": cid, "acronis_tenant_id": acronis_id})
    return {"items": items}


def _mapped_model(customers: pw.ModelSelect) -> pw.ModelSelect:
    """Leave out mirrored customers (CyberApp v2): an organization is mapped or mirrored, never both, so a
    mapped partner above a mirrored one neither lists nor maps them."""
    return (
        customers.join(
            MirroredTenant, pw.JOIN.LEFT_OUTER, on=(MirroredTenant.organization == Organization.id)
        )
        .where(MirroredTenant.id.is_null())
        .switch(Organization)
    )


def write(org_id: str, modified: Sequence[dict[str, str]], datacenter_url: str) -> None:
    """Apply a batch of map/unmap items all-or-nothing.

    An item without ``acronis_tenant_id`` (or with "") unmaps its customer. The final state is checked before
    anything is written, and no row of an organization outside the batch is ever touched.
    :raise Forbidden: ORG is not an active partner. :raise Conflict: ORG is not enabled, or a tenant would end
        up on two organizations. :raise PayloadError: an id is not a customer of ORG, or is listed twice.
    """
    desired: dict[str, str | None] = {}
    for index, item in enumerate(modified):
        vendor_id = item["vendor_tenant_id"].lower()
        if vendor_id in desired:
            raise PayloadError(
                f"Malformed request: payload.modified[{index}].vendor_tenant_id is listed twice."
            )
        desired[vendor_id] = (item.get("acronis_tenant_id") or "").lower() or None
    with db.atomic():
        require_enabled_partner(org_id)
        # Mapped or mirrored, never both (409): not for a mirrored partner, nor a mirrored customer or tenant.
        refuse_if_mirrored([t for t in desired.values() if t is not None], [org_id, *desired])
        _check_customers(org_id, list(desired))
        current = _current(list(desired))
        _check_final_state(desired, current)
        changed = [vid for vid, target in desired.items() if current.get(vid, (None, None))[0] != target]
        redated = [
            vid
            for vid, target in desired.items()
            if target is not None and vid not in changed and current[vid][1] != datacenter_url
        ]
        try:
            with db.atomic():
                _apply(changed, redated, desired, datacenter_url)
        except pw.IntegrityError as e:
            # Another transaction took one of the tenants after our check: still a conflict, never a 500.
            raise Conflict(HELD_MESSAGE, reason="tenant_mapping.write: unique mapping violated") from e
    log.info("tenant mapping written: org=%s changed=%d", org_id, len(changed) + len(redated))


def _check_customers(org_id: str, vendor_ids: list[str]) -> None:
    """Every id must be a customer below ORG; unknown and foreign ids get the same answer."""
    found = {
        cid
        for (cid,) in Organization.subtree(org_id)
        .select(Organization.id)
        .where((Organization.kind == CUSTOMER) & Organization.id.in_(vendor_ids))
        .tuples()
    }
    for index, vendor_id in enumerate(vendor_ids):
        if vendor_id not in found:
            raise PayloadError(
                f"Malformed request: payload.modified[{index}].vendor_tenant_id"
                " is not a customer of this partner.",
                reason="tenant_mapping.write: vendor id outside Customers(ORG)",
            )


def _current(vendor_ids: list[str]) -> dict[str, tuple[str, str]]:
    rows = (
        OrganizationMapping.select(
            OrganizationMapping.organization,
            OrganizationMapping.acronis_tenant_id,
            OrganizationMapping.datacenter_url,
        )
        .where(OrganizationMapping.organization.in_(vendor_ids))
        .tuples()
    )
    return {oid: (acronis_id, dc) for oid, acronis_id, dc in rows}


def _check_final_state(desired: dict[str, str | None], current: dict[str, tuple[str, str]]) -> None:
    """:raise Conflict: when a tenant would end up on two organizations after the batch."""
    targets = [t for t in desired.values() if t is not None]
    if len(set(targets)) != len(targets):
        raise Conflict(DUPLICATE_MESSAGE, reason="tenant_mapping.write: duplicate tenant in batch")
    if not targets:
        return
    holders = (
        OrganizationMapping.select(OrganizationMapping.organization)
        .where(OrganizationMapping.acronis_tenant_id.in_(targets))
        .tuples()
    )
    # Targets are distinct, so a holder inside the batch either keeps its tenant or releases it. A holder
    # outside the batch (another partner, ORG itself, a customer not listed) would keep it: a conflict.
    if any(holder not in desired for (holder,) in holders):
        raise Conflict(HELD_MESSAGE, reason="tenant_mapping.write: tenant held outside the batch")


def _apply(
    changed: list[str], redated: list[str], desired: dict[str, str | None], datacenter_url: str
) -> None:
    # Delete first, then insert: a swap of two tenants inside one batch never trips the unique index midway.
    if changed:
        OrganizationMapping.delete().where(OrganizationMapping.organization.in_(changed)).execute()
    rows = [
        {"organization": vid, "acronis_tenant_id": desired[vid], "datacenter_url": datacenter_url}
        for vid in changed
        if desired[vid] is not None
    ]
    if rows:
        OrganizationMapping.insert_many(rows).execute()
    if redated:
        OrganizationMapping.update(datacenter_url=datacenter_url).where(
            OrganizationMapping.organization.in_(redated)
        ).execute()
