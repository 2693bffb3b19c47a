"""Root partner and admin: created once, found again, passwords changed only on request."""

from __future__ import annotations

import peewee as pw
import pytest

from endpoint.provisioning.tenancy import ensure_admin, ensure_root_partner
from models import PARTNER, Organization, User
from tests.support.builders import create_org, fast_hasher


def test_root_partner_is_created_once(database: pw.Database) -> None:
    first, created = ensure_root_partner("Vendor Root")
    again, created_again = ensure_root_partner("Vendor Root")
    assert created and not created_again and first.id == again.id
    assert first.kind == PARTNER and first.parent_id is None
    assert Organization.select().count() == 1


def test_root_partner_accepts_a_fixed_id(database: pw.Database) -> None:
    org, _ = ensure_root_partner("Fixed", "b9c1a52c-280e-45cd-be77-ba927fc42950")
    assert org.id == "b9c1a52c-280e-45cd-be77-ba927fc42950"


def test_admin_is_created_normalized_with_a_hash(database: pw.Database) -> None:
    root, _ = ensure_root_partner("Root")
    account = ensure_admin(root, "Admin", "pw-123456", fast_hasher().hash)
    user = User.get(User.id == account.user_id)
    assert account.created and account.password_set and user.login == "admin"
    assert user.password_hash.startswith("$argon2id$") and "pw-123456" not in user.password_hash


def test_existing_admin_keeps_its_password_unless_reset(database: pw.Database) -> None:
    root, _ = ensure_root_partner("Root")
    ensure_admin(root, "admin", "first-pass", fast_hasher().hash)
    before = User.get(User.login == "admin").password_hash
    assert not ensure_admin(root, "admin", "second", fast_hasher().hash).password_set
    assert User.get(User.login == "admin").password_hash == before
    assert ensure_admin(root, "admin", "second", fast_hasher().hash, reset_password=True).password_set
    assert User.get(User.login == "admin").password_hash != before


def test_admin_without_password_then_given_one(database: pw.Database) -> None:
    root, _ = ensure_root_partner("Root")
    assert not ensure_admin(root, "admin", None, fast_hasher().hash).password_set
    assert ensure_admin(root, "admin", "now-set-1", fast_hasher().hash).password_set


def test_login_of_another_organization_is_refused(database: pw.Database) -> None:
    root, _ = ensure_root_partner("Root")
    ensure_admin(create_org("Elsewhere"), "admin", "x-123456", fast_hasher().hash)
    with pytest.raises(ValueError, match="another organization"):
        ensure_admin(root, "admin", "y-123456", fast_hasher().hash)
