"""Mapped customer enablement: topology.read, tenant_mapping.read and tenant_mapping.write (§9.2).

The mappings themselves, and the rule that a tenant ends on at most one organization, are tenancy's
(tenancy/mappings.py); here: who may ask, the payloads, and mirrored tenants kept out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from endpoint.callbacks.mirroring import refuse_if_mirrored
from endpoint.errors import PayloadError
from endpoint.tenancy.mappings import customer_mappings, remap
from endpoint.tenancy.organizations import require_enabled_partner
from endpoint.tenancy.subtrees import mapped_customers, not_customers
from models import Organization, db

log = logging.getLogger(__name__)


def topology(org_id: str, kind: str | None = None) -> dict[str, Any]:
    """{"items": [{"id", "name"}]} for every customer below ORG at any depth (mirrored ones left out),
    ordered by name then id.

    :raise Forbidden: ORG is not an active partner. :raise Conflict: ORG is not enabled.
    """
    require_enabled_partner(org_id, kind)
    rows = mapped_customers(org_id).select(Organization.id, Organization.name).tuples()
    return {"items": [{"id": cid, "name": name} for cid, name in rows]}


def read(org_id: str, datacenter_url: str, kind: str | None = None) -> dict[str, Any]:
    """Every customer of ORG: mapped on this data center with its tenant, unmapped with its id only.

    Customers mapped on another data center are left out so they cannot be mapped twice (§13 point 10),
    and so are mirrored customers.
    :raise Forbidden: ORG is not an active partner. :raise Conflict: ORG is not enabled.
    """
    require_enabled_partner(org_id, kind)
    items: list[dict[str, str]] = []
    for cid, acronis_id, mapped_dc in customer_mappings(org_id):
        if acronis_id is None:
            items.append({"vendor_tenant_id": cid})
        elif mapped_dc == datacenter_url:
            items.append({"vendor_tenant_id": cid, "acronis_tenant_id": acronis_id})
    return {"items": items}


def write(org_id: str, modified: Sequence[dict[str, str]], datacenter_url: str) -> None:
    """Apply a batch of map/unmap items all-or-nothing (tenancy/mappings.py ``remap``).

    An item without ``acronis_tenant_id`` (or with "") unmaps its customer.
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
        strangers = not_customers(org_id, list(desired))
        if strangers:
            raise PayloadError(
                f"Malformed request: payload.modified[{list(desired).index(strangers[0])}].vendor_tenant_id"
                " is not a customer of this partner.",
                reason="tenant_mapping.write: vendor id outside Customers(ORG)",
            )
        changed = remap(desired, datacenter_url)
    log.info("tenant mapping written: org=%s changed=%d", org_id, changed)
