"""What lies below a partner: its customers at any depth, and the one an Acronis tenant names (no IDOR)."""

from __future__ import annotations

import peewee as pw

from endpoint.errors import Forbidden
from endpoint.tenancy.organizations import require_partner
from models import CUSTOMER, Organization, OrganizationMapping
from models.mirroring import MirroredTenant
from models.prepared import PreparedQuery


def target_customer(org_id: str, tenant_id: str, kind: str | None = None) -> str:
    """The id of the active customer inside Subtree(ORG) mapped to ``tenant_id`` (§12 defect 2: no IDOR).

    One query: the recursive CTE anchored at ORG, joined to the mapping of ``tenant_id``.
    :raise Forbidden: ORG is not an active partner, or the tenant is unmapped, another partner's, ORG's own,
        not a customer, or disabled. All look the same to the caller.
    """
    require_partner(org_id, kind)
    row = _MAPPED_IN_SUBTREE.one(root_id=org_id, tenant_id=tenant_id.lower())
    if row is None:
        row = _mirrored_in_subtree(org_id, tenant_id.lower())
    if row is None:
        raise Forbidden(reason="user callback: tenant is not mapped to an organization of the acting partner")
    target_id, kind, active = row
    if kind != CUSTOMER:
        raise Forbidden(reason="user callback: tenant is not a customer of the acting partner")
    if not active:
        raise Forbidden(reason="user callback: tenant is disabled")
    return str(target_id)


def _mirrored_in_subtree(org_id: str, tenant_id: str) -> tuple[str, str, bool] | None:
    """A customer mirrored for ``tenant_id`` (CyberApp v2) inside Subtree(ORG): no mapping row, same rules.

    Only asked when no mapping matched, so the mapped hot path keeps its single query. It counts as active
    only while its organization is active, it is enabled, and so is its mirrored partner: a disabled
    mirrored customer, or any customer of a disabled mirrored partner, gets 403.
    """
    subtree = Organization.subtree(org_id).select(Organization.id)
    partner = MirroredTenant.alias()
    row = (
        Organization.select(Organization.id, Organization.kind, Organization.active)
        .join(MirroredTenant, on=(MirroredTenant.organization == Organization.id))
        .join(partner, pw.JOIN.LEFT_OUTER, on=(partner.acronis_tenant_id == MirroredTenant.partner_tenant_id))
        .select_extend(MirroredTenant.enabled, partner.enabled)
        .where((MirroredTenant.acronis_tenant_id == tenant_id) & Organization.id.in_(subtree))
        .tuples()
        .first()
    )
    if row is None:
        return None
    target_id, kind, active, enabled, partner_enabled = row
    return str(target_id), kind, bool(active) and bool(enabled) and bool(partner_enabled)


def mapped_customers(org_id: str) -> pw.ModelSelect:
    """Every customer below ORG at any depth, ordered by name then id, mirrored ones left out (CyberApp
    v2): an organization is mapped or mirrored, never both, so a mapped partner above a mirrored one
    neither lists nor maps them."""
    return (
        Organization.customers_of(org_id)
        .join(MirroredTenant, pw.JOIN.LEFT_OUTER, on=(MirroredTenant.organization == Organization.id))
        .where(MirroredTenant.id.is_null())
        .switch(Organization)
    )


def not_customers(org_id: str, ids: list[str]) -> list[str]:
    """Those of ``ids`` that are not customers below ORG (unknown and foreign ids alike), in their order."""
    found = {
        cid
        for (cid,) in Organization.subtree(org_id)
        .select(Organization.id)
        .where((Organization.kind == CUSTOMER) & Organization.id.in_(ids))
        .tuples()
    }
    return [i for i in ids if i not in found]


# The read path of every user callback, rendered once (models/prepared.py).
_MAPPED_IN_SUBTREE = PreparedQuery(
    lambda root_id, tenant_id: (
        Organization.subtree(root_id)
        .select(Organization.id, Organization.kind, Organization.active)
        .switch(Organization)
        .join(OrganizationMapping, on=(OrganizationMapping.organization == Organization.id))
        .where(OrganizationMapping.acronis_tenant_id == tenant_id)
    ),
    root_id=str,
    tenant_id=str,
)
