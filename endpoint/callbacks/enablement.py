"""Mapped partner enablement: enablement.read, enablement.write and enablement.reset (§9.1)."""

from __future__ import annotations

import logging
from typing import Any

import peewee as pw

from endpoint.callbacks.mirroring import refuse_if_mirrored
from endpoint.errors import Conflict, Forbidden
from endpoint.tenancy.organizations import require_partner
from models import CUSTOMER, Organization, OrganizationMapping, db

log = logging.getLogger(__name__)

REMAP_MESSAGE = "This organization is already mapped to a different Acronis tenant."
TAKEN_MESSAGE = "This Acronis tenant is already mapped to another organization."


def read(org_id: str, kind: str | None = None) -> dict[str, Any]:
    """{"vendor_tenant_id": ORG, "acronis_tenant_id": ...}, the latter only when ORG is mapped.

    :raise Forbidden: when ORG is not an active partner.
    """
    require_partner(org_id, kind)
    mapping = OrganizationMapping.get_or_none(OrganizationMapping.organization == org_id)
    payload = {"vendor_tenant_id": org_id}
    if mapping is not None:
        payload["acronis_tenant_id"] = mapping.acronis_tenant_id
    return payload


def write(org_id: str, vendor_tenant_id: str, acronis_tenant_id: str, datacenter_url: str) -> None:
    """Map ORG to ``acronis_tenant_id``; the same mapping again is a no-op.

    :raise Forbidden: ORG is not an active partner, or ``vendor_tenant_id`` is not ORG (another partner's
        credentials). :raise Conflict: ORG is mapped to a different tenant, or the tenant to another org.
    """
    acronis_tenant_id = acronis_tenant_id.lower()
    with db.atomic():
        require_partner(org_id)
        if vendor_tenant_id.lower() != org_id.lower():
            raise Forbidden(reason="enablement.write: vendor_tenant_id is not the acting organization")
        refuse_if_mirrored([acronis_tenant_id], [org_id])  # one enablement model per partner (409)
        current = OrganizationMapping.get_or_none(OrganizationMapping.organization == org_id)
        if current is not None:
            if current.acronis_tenant_id != acronis_tenant_id:
                raise Conflict(REMAP_MESSAGE, reason="enablement.write: re-map attempt")
            return
        try:
            # A savepoint, so the transaction stays usable to tell which constraint fired.
            with db.atomic():
                OrganizationMapping.create(
                    organization=org_id, acronis_tenant_id=acronis_tenant_id, datacenter_url=datacenter_url
                )
        except pw.IntegrityError as e:
            # Both columns are unique: a concurrent enablement of ORG, or the tenant held by another org.
            mine = OrganizationMapping.get_or_none(OrganizationMapping.organization == org_id)
            if mine is not None and mine.acronis_tenant_id == acronis_tenant_id:
                return
            message = REMAP_MESSAGE if mine is not None else TAKEN_MESSAGE
            raise Conflict(message, reason="enablement.write: unique mapping violated") from e
    log.info("partner enabled: org=%s", org_id)


def reset(org_id: str) -> None:
    """Delete ORG's own mapping and its customers' at any depth; sub-partners keep theirs (§13 point 8).

    :raise Forbidden: when ORG is not an active partner.
    """
    with db.atomic():
        require_partner(org_id)
        customers = Organization.subtree(org_id).where(Organization.kind == CUSTOMER).select(Organization.id)
        deleted = (
            OrganizationMapping.delete()
            .where(
                (OrganizationMapping.organization == org_id) | OrganizationMapping.organization.in_(customers)
            )
            .execute()
        )
    log.info("partner reset: org=%s mappings_deleted=%d", org_id, deleted)
