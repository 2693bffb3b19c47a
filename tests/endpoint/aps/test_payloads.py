"""APS bodies: the fields we read are strictly typed; controller metadata is tolerated; junk is a 400."""

from __future__ import annotations

import json
from typing import Any

import pytest

from endpoint.aps.payloads import (
    parse_app,
    parse_event,
    parse_tenant,
    parse_tenant_update,
    parse_user,
    parse_user_update,
    parse_version,
)
from endpoint.errors import PayloadError
from tests.support.aps_builders import APP_TYPE, INSTANCE_ID, tenant_body, user_body

TENANT = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def raw(document: Any) -> bytes:
    return json.dumps(document).encode()


def test_app_creation_keeps_the_global_settings() -> None:
    app = parse_app(
        raw({"aps": {"type": APP_TYPE, "id": INSTANCE_ID.upper(), "status": "aps:ready"}, "hubID": "h"})
    )
    assert (app.aps_id, app.aps_type, app.settings) == (INSTANCE_ID, APP_TYPE, {"hubID": "h"})


def test_app_update_may_be_empty() -> None:
    assert parse_app(b"", update=True).settings == {}
    assert parse_app(raw({"x": 1}), update=True).settings == {"x": 1}


def test_tenant_with_everything() -> None:
    body = tenant_body(
        TENANT,
        name="Acme",
        account={"aps": {"id": INSTANCE_ID}},
        USERS={"limit": 5},
        admin={"login": "boss", "name": "Boss", "email": "b@example.com"},
        subscription={"aps": {"id": INSTANCE_ID}},  # controller metadata: tolerated, not read
    )
    tenant = parse_tenant(raw(body))
    assert tenant.aps_id == TENANT and tenant.name == "Acme" and tenant.account_id == INSTANCE_ID
    assert tenant.users_limit == 5 and tenant.admin is not None and tenant.admin.login == "boss"


@pytest.mark.parametrize("limit", [None, -1])
def test_unlimited_users(limit: int | None) -> None:
    assert parse_tenant(raw(tenant_body(TENANT, USERS={"limit": limit}))).users_limit is None


def test_tenant_update_distinguishes_absent_and_cleared_limits() -> None:
    assert not parse_tenant_update(raw({"name": "N"})).limit_given
    cleared = parse_tenant_update(raw({"USERS": {"limit": None}}))
    assert cleared.limit_given and cleared.users_limit is None


def test_user_and_update() -> None:
    user = parse_user(raw(user_body(TENANT, login="Ann", email="a@example.com")))
    assert (user.tenant_id, user.login, user.name) == (TENANT, "Ann", "Ann")
    assert parse_user_update(raw({"name": "New"})).email is None


def test_event_reads_event_and_source_only() -> None:
    event = parse_event(
        raw({"event": "http://aps-standard.org/core/events/changed", "source": {"id": TENANT}, "x": 1})
    )
    assert event.source_id == TENANT and event.source_type is None


@pytest.mark.parametrize(
    ("parse", "body", "fragment"),
    [
        (parse_app, b"", "not valid JSON"),
        (parse_app, b"[]", "must be a JSON object"),
        (parse_app, raw({"aps": {"type": APP_TYPE}}), "aps.id is required"),
        (parse_app, raw({"aps": {"type": APP_TYPE, "id": "x"}}), "aps.id must be a UUID"),
        (parse_app, raw({"aps": {"type": APP_TYPE, "id": INSTANCE_ID}, "s": "x" * 20000}), "settings exceed"),
        (parse_app, b'{"aps": 1, "aps": 2}', "duplicate keys"),
        (parse_tenant, raw({"name": "x"}), "aps is required"),
        (parse_tenant, raw(tenant_body(TENANT, USERS={"limit": "5"})), "USERS.limit must be a JSON"),
        (parse_tenant, raw(tenant_body(TENANT, USERS={"limit": True})), "USERS.limit must be a JSON"),
        (parse_tenant, raw(tenant_body(TENANT, name="")), "name must not be empty"),
        (parse_tenant, raw(tenant_body(TENANT, name="a\nb")), "name must be non-blank text"),
        (parse_tenant, raw(tenant_body(TENANT, admin={"name": "x"})), "admin.login is required"),
        (parse_tenant, raw(tenant_body(TENANT, account={"aps": {"id": 5}})), "account.aps.id must be"),
        (parse_user, raw(user_body(TENANT, email="not-an-email")), "email must be an e-mail"),
        (
            parse_user,
            raw({"aps": {"type": "t", "id": TENANT}, "login": "x", "email": "a@b"}),
            "tenant is required",
        ),
        (parse_event, raw({"event": "e"}), "source is required"),
        (parse_tenant, b"\xef\xbb\xbf{}", "byte order mark"),
        (parse_tenant, b"{" * 40 + b"}" * 40, "nests deeper"),
    ],
)
def test_malformed_bodies_are_400(parse: Any, body: bytes, fragment: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse(body)
    assert fragment in caught.value.message


@pytest.mark.parametrize("value", [b"1.0", b"2.3-14", b"1.0+build~rc_1", b"9" * 64])
def test_upgrade_versions(value: bytes) -> None:
    assert parse_version([value]) == value.decode()


@pytest.mark.parametrize(
    "values",
    [
        [],
        [b""],
        [b"1.0", b"1.1"],
        [b"9" * 65],
        [b"1.0 beta"],
        [b" 1.0"],
        [b"1.0\n"],
        [b"1.0\x00"],
        ["1.é".encode()],
    ],
)
def test_unusable_upgrade_versions_are_400(values: list[bytes]) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_version(values)
    assert "version" in caught.value.message
