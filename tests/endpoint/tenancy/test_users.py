"""Users of an organization, as both protocols create and change them: global logins, scoped changes."""

from __future__ import annotations

import peewee as pw
import pytest

from endpoint.errors import Conflict, PayloadError
from endpoint.tenancy.users import count_users, delete_user, insert_user, update_user, users_of
from models import Organization, User
from tests.support.builders import create_customer, create_org, create_user


@pytest.fixture
def customers(database: pw.Database) -> tuple[str, str]:
    partner = create_org("Partner")
    return create_customer("Acme", partner).id, create_customer("Globex", partner).id


def test_logins_are_normalized_and_unique_across_organizations(customers: tuple[str, str]) -> None:
    acme, globex = customers
    user = insert_user(acme, "  Alice.Smith ", "Alice", "alice@example.com")
    assert (User.get_by_id(user.id).login, user.password_hash) == ("alice.smith", None)
    with pytest.raises(Conflict):
        insert_user(globex, "ALICE.SMITH", "Other Alice", "other@example.com")
    with pytest.raises(PayloadError, match="1 to 255 characters"):
        insert_user(acme, "   ", "Nobody", "n@example.com")
    assert (count_users(acme), count_users(globex)) == (1, 0)


def test_changes_scoped_to_an_organization_never_reach_another_ones_user(customers: tuple[str, str]) -> None:
    acme, globex = customers
    user = create_user("bob", Organization.get_by_id(acme), name="Bob")
    assert not update_user(user.id, globex, name="Mallory")
    assert not delete_user(user.id, globex)
    assert User.get_by_id(user.id).name == "Bob"
    before = User.get_by_id(user.id).updated_at
    assert update_user(user.id.upper(), acme, name="Robert")  # ids compare lower-case
    changed = User.get_by_id(user.id)
    assert changed.name == "Robert" and changed.updated_at >= before
    assert delete_user(user.id)  # unscoped: the APS routes know the user by its resource
    assert users_of(acme) == [] and not delete_user(user.id)


def test_users_of_lists_by_name_then_id(customers: tuple[str, str]) -> None:
    acme, _ = customers
    org = Organization.get_by_id(acme)
    created = [
        create_user(login, org, name=name) for login, name in (("z", "Ann"), ("a", "Zed"), ("m", "Ann"))
    ]
    listed = users_of(acme)
    assert [name for _, name, _ in listed] == ["Ann", "Ann", "Zed"]
    anns = sorted(u.id for u in created if u.name == "Ann")
    assert [uid for uid, _, _ in listed[:2]] == anns
