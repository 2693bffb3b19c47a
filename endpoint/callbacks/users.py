"""Custom user callbacks: users_read, user_write, user_update, user_delete, reset_password (§9.3).

Each acts on the customer the callback's tenant names inside the caller's subtree (tenancy/subtrees.py).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from endpoint.errors import NotFound
from endpoint.tenancy.subtrees import target_customer
from endpoint.tenancy.users import (
    USER_NOT_FOUND_MESSAGE,
    checked_login,
    delete_user,
    insert_user,
    update_user,
    users_of,
)
from models import db

log = logging.getLogger(__name__)

PASSWORD_BYTES = 18  # secrets.token_urlsafe: 144 bits, 24 characters (at least 128 bits, §9.3)


def new_password() -> str:
    """A fresh random password for reset_password; hashed by the caller off the database thread."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def users_read(org_id: str, tenant_id: str, kind: str | None = None) -> dict[str, Any]:
    """{"items": [{"id", "name", "email"}]} for the target customer's users, ordered by name then id.

    :raise Forbidden: see target_customer.
    """
    target_id = target_customer(org_id, tenant_id, kind)
    return {"items": [{"id": uid, "name": name, "email": email} for uid, name, email in users_of(target_id)]}


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


def user_update(org_id: str, tenant_id: str, user_id: str, name: str, email: str) -> None:
    """Change name and email of a user of the target customer.

    :raise Forbidden: see target_customer. :raise NotFound: the user is not in the target customer.
    """
    _change(
        org_id,
        tenant_id,
        user_id,
        "user updated",
        lambda target: update_user(user_id, target, name=name, email=email),
    )


def user_delete(org_id: str, tenant_id: str, user_id: str) -> None:
    """Delete a user of the target customer.

    :raise Forbidden: see target_customer. :raise NotFound: the user is not in the target customer.
    """
    _change(org_id, tenant_id, user_id, "user deleted", lambda target: delete_user(user_id, target))


def reset_password(org_id: str, tenant_id: str, user_id: str, password_hash: str) -> None:
    """Store a new argon2 hash for a user of the target customer (hashed beforehand, never in this thread).

    Replacing the stored hash is what voids cached verifications of the old password.
    :raise Forbidden: see target_customer. :raise NotFound: the user is not in the target customer.
    """
    _change(
        org_id,
        tenant_id,
        user_id,
        "password reset",
        lambda target: update_user(user_id, target, password_hash=password_hash),
    )


def _change(org_id: str, tenant_id: str, user_id: str, done: str, change: Callable[[str], bool]) -> None:
    """``change(target customer)`` in one transaction. :raise NotFound: when it found no such user there."""
    with db.atomic():
        target_id = target_customer(org_id, tenant_id)
        if not change(target_id):
            raise NotFound(USER_NOT_FOUND_MESSAGE)
    log.info("%s: org=%s user=%s", done, target_id, user_id)
