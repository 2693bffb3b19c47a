"""Custom user callbacks: users_read, user_write, user_update, user_delete, reset_password (§9.3)."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import peewee as pw

from endpoint.callbacks.enablement import require_partner
from endpoint.errors import Conflict, Forbidden, NotFound, PayloadError
from models import CUSTOMER, Organization, OrganizationMapping, User, db
from models.db import utcnow
from models.mirroring import MirroredTenant
from models.prepared import PreparedQuery

log = logging.getLogger(__name__)

LOGIN_TAKEN_MESSAGE = "This login is already taken."
USER_NOT_FOUND_MESSAGE = "User not found."
PASSWORD_BYTES = 18  # secrets.token_urlsafe: 144 bits, 24 characters (at least 128 bits, §9.3)


def new_password() -> str:
    """A fresh random password for reset_password; hashed by the caller off the database thread."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


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


def users_read(org_id: str, tenant_id: str, kind: str | None = None) -> dict[str, Any]:
    """{"items": [{"id", "name", "email"}]} for the target customer's users, ordered by name then id.

    :raise Forbidden: see target_customer.
    """
    target_id = target_customer(org_id, tenant_id, kind)
    rows = _USERS_OF.all(org_id=target_id)
    return {"items": [{"id": uid, "name": name, "email": email} for uid, name, email in rows]}


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
_USERS_OF = PreparedQuery(
    lambda org_id: (
        User.select(User.id, User.name, User.email)
        .where(User.organization == org_id)
        .order_by(User.name, User.id)
    ),
    org_id=str,
)


def user_write(org_id: str, tenant_id: str, login: str, name: str, email: str) -> None:
    """Create a user without a password in the target customer; logins are global and normalized.

    :raise Forbidden: see target_customer. :raise Conflict: the login is taken.
        :raise PayloadError: the normalized login is empty or too long.
    """
    checked_login(login)  # a malformed login is a 400 before any authorization question
    with db.atomic():
        target_id = target_customer(org_id, tenant_id)
        user = insert_user(target_id, login, name, email)
    log.info("user created: org=%s user=%s", target_id, user.id)


def insert_user(organization_id: str, login: str, name: str, email: str) -> User:
    """Create a user without a password; the login is normalized and globally unique. Call inside atomic().

    :raise PayloadError: the normalized login is empty or too long. :raise Conflict: the login is taken.
    """
    normalized = checked_login(login)
    try:
        with db.atomic():
            return User.create(login=normalized, name=name, email=email, organization=organization_id)
    except pw.IntegrityError as e:
        raise Conflict(LOGIN_TAKEN_MESSAGE, reason="unique login violated") from e


def checked_login(login: str) -> str:
    """The normalized login. :raise PayloadError: it is empty or longer than 255 characters."""
    normalized = User.normalize_login(login)
    if not 0 < len(normalized) <= 255:
        raise PayloadError("Malformed request: payload.login must be 1 to 255 characters.")
    return normalized


def user_update(org_id: str, tenant_id: str, user_id: str, name: str, email: str) -> None:
    """Change name and email of a user of the target customer.

    :raise Forbidden: see target_customer. :raise NotFound: the user is not in the target customer.
    """
    with db.atomic():
        target_id = target_customer(org_id, tenant_id)
        updated = (
            User.update(name=name, email=email, updated_at=utcnow())
            .where((User.id == user_id.lower()) & (User.organization == target_id))
            .execute()
        )
        if not updated:
            raise NotFound(USER_NOT_FOUND_MESSAGE)
    log.info("user updated: org=%s user=%s", target_id, user_id)


def user_delete(org_id: str, tenant_id: str, user_id: str) -> None:
    """Delete a user of the target customer.

    :raise Forbidden: see target_customer. :raise NotFound: the user is not in the target customer.
    """
    with db.atomic():
        target_id = target_customer(org_id, tenant_id)
        deleted = (
            User.delete().where((User.id == user_id.lower()) & (User.organization == target_id)).execute()
        )
        if not deleted:
            raise NotFound(USER_NOT_FOUND_MESSAGE)
    log.info("user deleted: org=%s user=%s", target_id, user_id)


def reset_password(org_id: str, tenant_id: str, user_id: str, password_hash: str) -> None:
    """Store a new argon2 hash for a user of the target customer (hashed beforehand, never in this thread).

    Replacing the stored hash is what voids cached verifications of the old password.
    :raise Forbidden: see target_customer. :raise NotFound: the user is not in the target customer.
    """
    with db.atomic():
        target_id = target_customer(org_id, tenant_id)
        updated = (
            User.update(password_hash=password_hash, updated_at=utcnow())
            .where((User.id == user_id.lower()) & (User.organization == target_id))
            .execute()
        )
        if not updated:
            raise NotFound(USER_NOT_FOUND_MESSAGE)
    log.info("password reset: org=%s user=%s", target_id, user_id)
