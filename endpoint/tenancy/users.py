"""Users of an organization: logins normalized and globally unique, created without a password."""

from __future__ import annotations

from typing import Any

import peewee as pw

from endpoint.errors import Conflict, PayloadError
from models import User, db
from models.db import utcnow
from models.prepared import PreparedQuery

LOGIN_TAKEN_MESSAGE = "This login is already taken."
USER_NOT_FOUND_MESSAGE = "User not found."


def checked_login(login: str) -> str:
    """The normalized login. :raise PayloadError: it is empty or longer than 255 characters."""
    normalized = User.normalize_login(login)
    if not 0 < len(normalized) <= 255:
        raise PayloadError("Malformed request: payload.login must be 1 to 255 characters.")
    return normalized


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


def users_of(organization_id: str) -> list[tuple[str, str, str]]:
    """(id, name, email) of every user of the organization, ordered by name then id."""
    return _USERS_OF.all(org_id=organization_id)


def count_users(organization_id: str) -> int:
    return User.select().where(User.organization == organization_id).count()


def update_user(user_id: str, organization_id: str | None = None, **fields: Any) -> bool:
    """Set ``fields`` (and ``updated_at``) on the user; with ``organization_id``, only a user of it.

    False when there is no such user (there).
    """
    query = User.update(**fields, updated_at=utcnow()).where(_user(user_id, organization_id))
    return bool(query.execute())


def delete_user(user_id: str, organization_id: str | None = None) -> bool:
    """Delete the user; with ``organization_id``, only a user of it. False when there is no such user."""
    return bool(User.delete().where(_user(user_id, organization_id)).execute())


def _user(user_id: str, organization_id: str | None) -> pw.Expression:
    condition = User.id == user_id.lower()
    return condition if organization_id is None else condition & (User.organization == organization_id)


# The read path of users_read, rendered once (models/prepared.py).
_USERS_OF = PreparedQuery(
    lambda org_id: (
        User.select(User.id, User.name, User.email)
        .where(User.organization == org_id)
        .order_by(User.name, User.id)
    ),
    org_id=str,
)
