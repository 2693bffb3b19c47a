"""Tenant mappings of customers: an Acronis tenant on at most one organization, changed all-or-nothing."""

from __future__ import annotations

import peewee as pw

from endpoint.errors import Conflict
from endpoint.tenancy.subtrees import mapped_customers
from models import Organization, OrganizationMapping, db

HELD_MESSAGE = "An Acronis tenant in this request is already mapped to another organization."
DUPLICATE_MESSAGE = "An Acronis tenant appears more than once in this request."


def customer_mappings(org_id: str) -> list[tuple[str, str | None, str | None]]:
    """(customer id, Acronis tenant or None, its data center or None) for every customer below ORG, mirrored
    ones left out, ordered by name then id."""
    return list(
        mapped_customers(org_id)
        .select(Organization.id, OrganizationMapping.acronis_tenant_id, OrganizationMapping.datacenter_url)
        .join(
            OrganizationMapping, pw.JOIN.LEFT_OUTER, on=(OrganizationMapping.organization == Organization.id)
        )
        .tuples()
    )


def remap(desired: dict[str, str | None], datacenter_url: str) -> int:
    """Give each organization of ``desired`` its tenant on ``datacenter_url`` (None: unmapped), all or
    nothing; returns how many mappings changed. The final state is checked before anything is written, and
    no row of an organization outside ``desired`` is ever touched. Call inside atomic().

    :raise Conflict: a tenant would end up on two organizations (also when a concurrent transaction took
        one of them after the check).
    """
    ids = list(desired)
    current = _current(ids)
    _check_final_state(desired, current)
    changed = [oid for oid, target in desired.items() if current.get(oid, (None, None))[0] != target]
    redated = [
        oid
        for oid, target in desired.items()
        if target is not None and oid not in changed and current[oid][1] != datacenter_url
    ]
    try:
        with db.atomic():
            _apply(changed, redated, desired, datacenter_url)
    except pw.IntegrityError as e:
        # Another transaction took one of the tenants after our check: still a conflict, never a 500.
        raise Conflict(HELD_MESSAGE, reason="tenant_mapping.write: unique mapping violated") from e
    return len(changed) + len(redated)


def _current(org_ids: list[str]) -> dict[str, tuple[str, str]]:
    rows = (
        OrganizationMapping.select(
            OrganizationMapping.organization,
            OrganizationMapping.acronis_tenant_id,
            OrganizationMapping.datacenter_url,
        )
        .where(OrganizationMapping.organization.in_(org_ids))
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
        {"organization": oid, "acronis_tenant_id": desired[oid], "datacenter_url": datacenter_url}
        for oid in changed
        if desired[oid] is not None
    ]
    if rows:
        OrganizationMapping.insert_many(rows).execute()
    if redated:
        OrganizationMapping.update(datacenter_url=datacenter_url).where(
            OrganizationMapping.organization.in_(redated)
        ).execute()
