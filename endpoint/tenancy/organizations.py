"""Organizations: who may act (an active partner, an enabled one), and a customer removed with its users."""

from __future__ import annotations

from endpoint.errors import Conflict, Forbidden
from models import PARTNER, Organization, OrganizationMapping, User
from models.prepared import PreparedQuery

NOT_ENABLED_MESSAGE = "The partner is not enabled."


def require_partner(org_id: str, kind: str | None = None) -> None:
    """The acting organization must be an active partner.

    ``kind``: the organization's kind as the end-user stage loaded it in this same unit of work, together
    with its active state (a disabled organization never authenticates), so reads need no second query.
    Writes pass None and re-read it under their transaction's write lock.
    :raise Forbidden: when it is missing, a customer, or disabled.
    """
    if kind is not None:
        if kind != PARTNER:
            raise Forbidden(reason="acting organization is not an active partner")
        return
    row = _ORGANIZATION.one(org_id=org_id)
    if row is None or row[0] != PARTNER or not row[1]:
        raise Forbidden(reason="acting organization is not an active partner")


def require_enabled_partner(org_id: str, kind: str | None = None) -> None:
    """The acting partner must also be mapped to an Acronis tenant.

    :raise Forbidden: see require_partner. :raise Conflict: when the partner is not enabled (§13 point 7).
    """
    require_partner(org_id, kind)
    if not OrganizationMapping.select().where(OrganizationMapping.organization == org_id).exists():
        raise Conflict(NOT_ENABLED_MESSAGE)


def delete_customer(org_id: str) -> None:
    """Delete a customer with its users; its mapping (and anything else hanging off it) goes by ON DELETE
    CASCADE. Call inside atomic()."""
    User.delete().where(User.organization == org_id).execute()
    Organization.delete().where(Organization.id == org_id).execute()


# Every callback starts with this lookup: rendered once (models/prepared.py).
_ORGANIZATION = PreparedQuery(
    lambda org_id: Organization.select(Organization.kind, Organization.active).where(
        Organization.id == org_id
    ),
    org_id=str,
)
