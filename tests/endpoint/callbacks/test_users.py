"""Custom user callbacks (§9.3, security-checklist items 37, 38 and 48, §12 defects 2, 9, 10 and 16)."""

from __future__ import annotations

import string
import uuid
from collections.abc import Callable

import argon2
import pytest

from endpoint.callbacks import users
from endpoint.errors import Conflict, Forbidden, NotFound, PayloadError
from models import User
from tests.support.builders import fast_hasher
from tests.support.callback_builders import (
    DEEP_TENANT,
    DISABLED_TENANT,
    FREE_TENANT,
    OTHER_CUSTOMER_TENANT,
    OTHER_TENANT,
    POSTMAN_PARTNER_TENANT,
    POSTMAN_USERS_TENANT,
    SUB_TENANT,
    World,
    snapshot,
)

IDOR_TENANTS = {
    "another partner's customer": OTHER_CUSTOMER_TENANT,
    "another partner": OTHER_TENANT,
    "unmapped tenant": FREE_TENANT,
    "the partner's own tenant": POSTMAN_PARTNER_TENANT,
    "a sub-partner's tenant": SUB_TENANT,
    "a disabled customer": DISABLED_TENANT,
}


def all_calls(world: World) -> dict[str, Callable[[str, str], object]]:
    """Every user callback, aimed at users that exist (Carol: Partner B's; Alice: ours)."""
    return {
        "users_read": lambda org, tenant: users.users_read(org, tenant),
        "user_write": lambda org, tenant: users.user_write(
            org, tenant, "mallory", "Mallory", "m@example.com"
        ),
        "user_update": lambda org, tenant: users.user_update(
            org, tenant, world.carol.id, "Owned", "x@example.com"
        ),
        "user_delete": lambda org, tenant: users.user_delete(org, tenant, world.carol.id),
        "reset_password": lambda org, tenant: users.reset_password(
            org, tenant, world.carol.id, "$argon2id$x"
        ),
    }


@pytest.mark.parametrize("tenant_case", sorted(IDOR_TENANTS))
@pytest.mark.parametrize(
    "callback", ["users_read", "user_write", "user_update", "user_delete", "reset_password"]
)
def test_cross_tenant_calls_are_forbidden_and_change_nothing(
    world: World, tenant_case: str, callback: str
) -> None:
    before = snapshot()
    with pytest.raises(Forbidden) as info:
        all_calls(world)[callback](world.partner.id, IDOR_TENANTS[tenant_case])
    assert info.value.message == "Not allowed for this organization."
    assert snapshot() == before


def test_a_customer_acting_on_its_own_tenant_is_forbidden(world: World) -> None:
    with pytest.raises(Forbidden):
        users.users_read(world.demo.id, POSTMAN_USERS_TENANT)


def test_partner_b_cannot_read_partner_a_users(world: World) -> None:
    with pytest.raises(Forbidden):
        users.users_read(world.other.id, POSTMAN_USERS_TENANT)
    assert users.users_read(world.other.id, OTHER_CUSTOMER_TENANT) == {
        "items": [{"id": world.carol.id, "name": "Carol", "email": "carol@example.com"}]
    }


def test_users_read_lists_the_target_users_ordered_with_three_fields(world: World) -> None:
    twin = User.create(
        login="alice2",
        name="Alice",
        email="a2@example.com",
        organization=world.demo,
        password_hash="$argon2id$secret",
        id="00000000-0000-4000-8000-000000000001",
    )
    items = users.users_read(world.partner.id, POSTMAN_USERS_TENANT)["items"]
    expected = sorted([(u.name, u.id, u.email) for u in (world.alice, world.bob, twin)])
    assert [(i["name"], i["id"], i["email"]) for i in items] == expected
    assert all(set(i) == {"id", "name", "email"} for i in items)  # never a login, hash or password
    assert world.admin.id not in {i["id"] for i in items} and world.carol.id not in {i["id"] for i in items}


def test_customers_at_depth_three_are_valid_targets(world: World) -> None:
    assert users.users_read(world.partner.id, DEEP_TENANT)["items"] == [
        {"id": world.deep_user.id, "name": "Dora", "email": "dora@example.com"}
    ]
    assert users.users_read(world.sub.id, DEEP_TENANT)["items"][0]["id"] == world.deep_user.id


def test_user_write_creates_a_user_without_password_and_normalized_login(world: World) -> None:
    users.user_write(world.partner.id, POSTMAN_USERS_TENANT, "Test.User", "User", "user@example.net")
    created = User.get(User.login == "test.user")
    assert (created.name, created.email, created.organization_id) == (
        "User",
        "user@example.net",
        world.demo.id,
    )
    assert created.password_hash is None


@pytest.mark.parametrize("login", ["alice", "ALICE", "carol"])  # global uniqueness, after normalization
def test_user_write_with_a_taken_login_is_409(world: World, login: str) -> None:
    before = snapshot()
    with pytest.raises(Conflict) as info:
        users.user_write(world.partner.id, POSTMAN_USERS_TENANT, login, "Someone", "s@example.com")
    assert info.value.message == "This login is already taken."
    assert snapshot() == before


def test_user_write_refuses_a_login_that_grows_too_long_when_normalized(world: World) -> None:
    before = snapshot()
    with pytest.raises(PayloadError):
        users.user_write(world.partner.id, POSTMAN_USERS_TENANT, "\u0130" * 200, "Dotted", "d@example.com")
    assert snapshot() == before


@pytest.mark.parametrize(
    ("login", "name", "email"),
    [
        ("o'brien;--", "Robert'); DROP TABLE user;--", "o'brien@example.com"),
        ('x";\\%_', "100% _under_ \\back", "p%_@ex'ample.com"),
    ],
)
def test_sql_like_values_are_stored_verbatim(world: World, login: str, name: str, email: str) -> None:
    users.user_write(world.partner.id, POSTMAN_USERS_TENANT, login, name, email)
    stored = User.get(User.login == login)
    assert (stored.name, stored.email) == (name, email)
    users.user_update(world.partner.id, POSTMAN_USERS_TENANT, world.alice.id, name, email)
    alice = User.get_by_id(world.alice.id)
    assert (alice.name, alice.email) == (name, email)
    assert User.select().count() == 6  # nothing else touched


def test_user_update_changes_only_name_and_email(world: World) -> None:
    users.user_update(
        world.partner.id, POSTMAN_USERS_TENANT, world.alice.id.upper(), "Alice B", "ab@example.com"
    )
    alice = User.get_by_id(world.alice.id)
    assert (alice.name, alice.email, alice.login, alice.organization_id) == (
        "Alice B",
        "ab@example.com",
        "alice",
        world.demo.id,
    )
    assert User.get_by_id(world.bob.id).name == "Bob"


def test_user_delete_removes_the_user(world: World) -> None:
    users.user_delete(world.partner.id, POSTMAN_USERS_TENANT, world.bob.id)
    assert User.get_or_none(User.id == world.bob.id) is None
    assert User.select().count() == 4


@pytest.mark.parametrize("who", ["partner admin", "other org user", "deep user", "unknown"])
@pytest.mark.parametrize("callback", ["user_update", "user_delete", "reset_password"])
def test_a_user_outside_the_target_org_is_404(world: World, who: str, callback: str) -> None:
    user_id = {
        "partner admin": world.admin.id,
        "other org user": world.carol.id,
        "deep user": world.deep_user.id,
        "unknown": str(uuid.uuid4()),
    }[who]
    call = {
        "user_update": lambda: users.user_update(world.partner.id, POSTMAN_USERS_TENANT, user_id, "X", "x@x"),
        "user_delete": lambda: users.user_delete(world.partner.id, POSTMAN_USERS_TENANT, user_id),
        "reset_password": lambda: users.reset_password(world.partner.id, POSTMAN_USERS_TENANT, user_id, "$h"),
    }[callback]
    before = snapshot()
    with pytest.raises(NotFound) as info:
        call()
    assert info.value.message == "User not found."  # the sample answered 200 (§12 defect 10)
    assert snapshot() == before


def test_reset_password_stores_the_given_hash(world: World) -> None:
    password = users.new_password()
    hashed = fast_hasher().hash(password)
    users.reset_password(world.partner.id, POSTMAN_USERS_TENANT, world.alice.id, hashed)
    stored = User.get_by_id(world.alice.id).password_hash
    assert stored == hashed and password not in stored
    assert argon2.PasswordHasher().verify(stored, password)


def test_new_passwords_are_long_random_and_url_safe() -> None:
    passwords = {users.new_password() for _ in range(100)}
    assert len(passwords) == 100
    alphabet = set(string.ascii_letters + string.digits + "-_")
    assert all(len(p) >= 24 and set(p) <= alphabet for p in passwords)  # >= 144 bits
