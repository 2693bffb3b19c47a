"""The root partner and its admin user: created once, found again on every re-run."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from models import PARTNER, Organization, User
from models.db import db

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AdminAccount:
    organization_id: str
    user_id: str
    login: str
    created: bool
    password_set: bool


def ensure_root_partner(name: str, org_id: str | None = None) -> tuple[Organization, bool]:
    """The top partner organization (no parent) with this name; created when absent."""
    with db.atomic():
        existing = (
            Organization.select()
            .where(Organization.parent.is_null(), Organization.kind == PARTNER, Organization.name == name)
            .first()
        )
        if existing is not None:
            return existing, False
        fields = {"id": org_id} if org_id else {}
        return Organization.create(name=name, kind=PARTNER, **fields), True


MIN_ADMIN_PASSWORD = 12


def check_admin_password(login: str, password: str) -> None:
    """The floor for a password an operator chooses (the demo and generated ones are longer).

    :raise ValueError: shorter than MIN_ADMIN_PASSWORD characters, or the login itself.
    """
    if len(password) < MIN_ADMIN_PASSWORD:
        raise ValueError(f"the admin password must have at least {MIN_ADMIN_PASSWORD} characters")
    if User.normalize_login(password) == User.normalize_login(login):
        raise ValueError("the admin password must not be the login")


def admin_has_password(login: str) -> bool:
    """Whether ``login`` exists and can already log in (a re-run needs no new password)."""
    user = User.get_or_none(User.login == User.normalize_login(login))
    return user is not None and user.password_hash is not None


def ensure_admin(
    organization: Organization,
    login: str,
    password: str | None,
    hash_password: Callable[[str], str],
    *,
    reset_password: bool = False,
) -> AdminAccount:
    """The admin user of ``organization``; an existing user's password changes only on request.

    :raise ValueError: the login exists in another organization.
    """
    normalized = User.normalize_login(login)
    with db.atomic():
        user = User.get_or_none(User.login == normalized)
        if user is not None and user.organization_id != organization.id:
            raise ValueError(f"login {normalized!r} already belongs to another organization")
        password_set = False
        if user is None:
            user = User.create(
                login=normalized,
                name="Administrator",
                email=f"{normalized}@localhost",
                organization=organization,
                password_hash=hash_password(password) if password else None,
            )
            password_set = bool(password)
            created = True
        else:
            created = False
            if password and (reset_password or user.password_hash is None):
                user.password_hash = hash_password(password)
                user.save()
                password_set = True
    return AdminAccount(organization.id, user.id, normalized, created, password_set)
