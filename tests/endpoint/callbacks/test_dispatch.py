"""CallbackDispatcher end to end on a real database runner: order of checks, ledger, Postman requests."""

from __future__ import annotations

import dataclasses
from typing import Any

import argon2
import pytest

from endpoint.callbacks import users
from endpoint.callbacks.dispatch import CallbackDispatcher
from endpoint.callbacks.envelope import Envelope
from endpoint.errors import Conflict, Forbidden, NotFound, PayloadError
from models import OrganizationMapping, RequestLedger, User
from tests.support.callback_builders import (
    CREATE,
    FREE_TENANT,
    OTHER_CUSTOMER_TENANT,
    POSTMAN_CUSTOMER,
    POSTMAN_CUSTOMER_TENANT,
    POSTMAN_PARTNER,
    POSTMAN_PARTNER_TENANT,
    POSTMAN_USER,
    RESET,
    REUSED,
    RecordingHasher,
    World,
    envelope,
    fails,
    send,
    snapshot,
)

RS = "cti.a.p.acgw.response.v1.0~"
NO_CONTENT = RS + "a.p.success_no_content.v1.0"


def test_postman_enablement_requests(dispatcher: CallbackDispatcher, world: World) -> None:
    OrganizationMapping.delete().where(OrganizationMapping.organization == POSTMAN_PARTNER).execute()
    read = send(
        dispatcher, world, env := envelope("a.p.enablement.read.v1.0", tenant_id=POSTMAN_PARTNER_TENANT)
    )
    assert read.status == 200
    assert (
        read.body["type"] == RS + "a.p.enablement.read.ok.v1.0" and read.body["request_id"] == env.request_id
    )
    assert read.body["payload"] == {"vendor_tenant_id": POSTMAN_PARTNER}
    payload = {"vendor_tenant_id": POSTMAN_PARTNER, "acronis_tenant_id": POSTMAN_PARTNER_TENANT}
    write = send(
        dispatcher, world, envelope("a.p.enablement.write.v1.0", payload, tenant_id=POSTMAN_PARTNER_TENANT)
    )
    assert write.status == 200 and set(write.body) == {"type", "request_id", "response_id"}
    assert write.body["type"] == NO_CONTENT
    again = send(dispatcher, world, envelope("a.p.enablement.read.v1.0"))
    assert again.body["payload"]["acronis_tenant_id"] == POSTMAN_PARTNER_TENANT
    reset = send(dispatcher, world, envelope("a.p.enablement.reset.v1.0"))
    assert reset.body["type"] == NO_CONTENT
    assert (
        OrganizationMapping.select().where(OrganizationMapping.organization == POSTMAN_PARTNER).count() == 0
    )


def test_postman_mapping_requests(dispatcher: CallbackDispatcher, world: World) -> None:
    topology = send(dispatcher, world, envelope("a.p.topology.read.v1.0", {}))
    assert topology.body["type"] == RS + "a.p.topology.read.ok.v1.0"
    assert {"id": POSTMAN_CUSTOMER, "name": "Postman customer"} in topology.body["payload"]["items"]
    assert "paging" not in topology.body["payload"]
    read = send(dispatcher, world, envelope("a.p.tenant_mapping.read.v1.0"))
    assert {"vendor_tenant_id": POSTMAN_CUSTOMER} in read.body["payload"]["items"]
    modified = {
        "modified": [{"vendor_tenant_id": POSTMAN_CUSTOMER, "acronis_tenant_id": POSTMAN_CUSTOMER_TENANT}]
    }
    write = send(dispatcher, world, envelope("a.p.tenant_mapping.write.v1.0", modified))
    assert write.body["type"] == NO_CONTENT
    read = send(dispatcher, world, envelope("a.p.tenant_mapping.read.v1.0"))
    assert {"vendor_tenant_id": POSTMAN_CUSTOMER, "acronis_tenant_id": POSTMAN_CUSTOMER_TENANT} in read.body[
        "payload"
    ]["items"]


def test_postman_user_requests(dispatcher: CallbackDispatcher, world: World, hasher: RecordingHasher) -> None:
    listed = send(dispatcher, world, envelope("vendor.app.users_read.v1.0", {}))
    assert listed.body["type"] == RS + "vendor.app.users_read_success.v1.0"
    assert [u["name"] for u in listed.body["payload"]["items"]] == ["Alice", "Bob"]
    created = send(dispatcher, world, envelope(CREATE, POSTMAN_USER))
    assert created.body["type"] == RS + "vendor.app.user_write_success.v1.0" and "payload" not in created.body
    reset = send(dispatcher, world, envelope(RESET, {"id": world.alice.id}))
    assert reset.body["type"] == RS + "vendor.app.reset_password_success.v1.0"
    password = reset.body["payload"]["password"]
    assert argon2.PasswordHasher().verify(User.get_by_id(world.alice.id).password_hash, password)
    assert hasher.threads and not any(
        name.startswith("db") for name in hasher.threads
    )  # never in a db thread


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (envelope("vendor.app.unknown.v1.0"), "Malformed request: unknown callback_id."),
        (envelope("a.p.partner.mirroring.get_state.v1.0"), "Malformed request: unknown callback_id."),
        (
            envelope(CREATE, POSTMAN_USER, type_="cti.a.p.acgw.request.v1.0~a.p.empty.v1.0"),
            "Malformed request: type does not match the callback.",
        ),
        (
            envelope("a.p.enablement.read.v1.0", type_="cti.a.p.acgw.request.v1.0~a.p.enablement.write.v1.0"),
            "Malformed request: type does not match the callback.",
        ),
        (
            envelope(
                "a.p.enablement.write.v1.0", {"vendor_tenant_id": POSTMAN_PARTNER, "acronis_tenant_id": "x"}
            ),
            "Malformed request: payload.acronis_tenant_id must be a UUID.",
        ),
        (
            envelope(CREATE, {**POSTMAN_USER, "organization_id": POSTMAN_PARTNER}),
            "Malformed request: payload.organization_id is not allowed.",
        ),
        (
            envelope("vendor.app.users_read.v1.0", {"tenant_id": OTHER_CUSTOMER_TENANT}),
            "Malformed request: payload.tenant_id is not allowed.",
        ),
        (
            envelope(
                "a.p.enablement.write.v1.0",
                {"vendor_tenant_id": POSTMAN_PARTNER, "acronis_tenant_id": FREE_TENANT},
                datacenter_url=None,
            ),
            "Malformed request: context.datacenter_url is required for this callback.",
        ),
        (
            envelope("a.p.tenant_mapping.read.v1.0", datacenter_url=None),
            "Malformed request: context.datacenter_url is required for this callback.",
        ),
        (
            envelope("a.p.tenant_mapping.write.v1.0", {"modified": []}, datacenter_url=None),
            "Malformed request: context.datacenter_url is required for this callback.",
        ),
    ],
)
def test_malformed_callbacks_are_400(
    dispatcher: CallbackDispatcher, world: World, hasher: RecordingHasher, env: Envelope, message: str
) -> None:
    # The request_id to echo is the handler's (it parsed the envelope); errors no longer carry it.
    error = fails(dispatcher, world, env, PayloadError)
    assert error.message == message
    assert hasher.threads == []


def test_mapping_write_with_a_foreign_customer_is_400_and_unrecorded(
    dispatcher: CallbackDispatcher, world: World
) -> None:
    modified = {
        "modified": [
            {"vendor_tenant_id": POSTMAN_CUSTOMER, "acronis_tenant_id": POSTMAN_CUSTOMER_TENANT},
            {"vendor_tenant_id": world.other_customer.id},
        ]
    }
    fails(dispatcher, world, envelope("a.p.tenant_mapping.write.v1.0", modified), PayloadError)


@pytest.mark.parametrize("tenant", [OTHER_CUSTOMER_TENANT, FREE_TENANT, POSTMAN_PARTNER_TENANT])
@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("vendor.app.users_read.v1.0", {}),
        (CREATE, POSTMAN_USER),
        ("vendor.app.user_delete.v1.0", None),
        (RESET, None),
    ],
)
def test_cross_tenant_user_callbacks_are_403(
    dispatcher: CallbackDispatcher, world: World, tenant: str, name: str, payload: dict[str, Any] | None
) -> None:
    body = payload if payload is not None else {"id": world.carol.id}
    fails(dispatcher, world, envelope(name, body, tenant_id=tenant), Forbidden)


def test_a_customer_user_cannot_use_partner_callbacks(dispatcher: CallbackDispatcher, world: World) -> None:
    fails(dispatcher, world, envelope("a.p.enablement.reset.v1.0"), Forbidden, org=world.demo)
    fails(dispatcher, world, envelope("a.p.topology.read.v1.0"), Forbidden, org=world.demo)


def test_a_repeat_returns_the_stored_response_without_a_second_effect(
    dispatcher: CallbackDispatcher, world: World
) -> None:
    env = envelope(CREATE, POSTMAN_USER)
    first = send(dispatcher, world, env)
    after_first = snapshot()
    second = send(dispatcher, world, env)  # re-running would answer 409 "login taken"
    assert second == first  # same body, response_id included
    assert snapshot() == after_first
    assert RequestLedger.select().count() == 1


def test_a_retried_delete_is_answered_from_the_ledger_not_404(
    dispatcher: CallbackDispatcher, world: World
) -> None:
    env = envelope("vendor.app.user_delete.v1.0", {"id": world.bob.id})
    first = send(dispatcher, world, env)
    assert send(dispatcher, world, env) == first
    with pytest.raises(NotFound):
        send(
            dispatcher, world, envelope("vendor.app.user_delete.v1.0", {"id": world.bob.id})
        )  # a fresh request


@pytest.mark.parametrize(
    "change",
    [
        {"payload": {**POSTMAN_USER, "name": "Other"}},
        {
            "callback_id": "cti.a.p.acgw.callback.v1.0~vendor.app.users_read.v1.0",
            "type": "cti.a.p.acgw.request.v1.0~vendor.app.users_read.v1.0",
            "payload": {},
        },
        # The ledger runs before the callback id is checked: a reused id with an unknown callback is 409.
        {"callback_id": "cti.a.p.acgw.callback.v1.0~vendor.app.nope.v1.0"},
        {"type": "cti.a.p.acgw.request.v1.0~a.p.empty.v1.0"},
        {"tenant_id": OTHER_CUSTOMER_TENANT},
    ],
)
def test_a_request_id_reused_for_another_request_is_409(
    dispatcher: CallbackDispatcher, world: World, change: dict[str, Any]
) -> None:
    env = envelope(CREATE, POSTMAN_USER)
    send(dispatcher, world, env)
    error = fails(dispatcher, world, dataclasses.replace(env, **change), Conflict)
    assert error.message == REUSED


def test_reads_are_not_recorded_and_rerun(dispatcher: CallbackDispatcher, world: World) -> None:
    env = envelope("vendor.app.users_read.v1.0")
    first, second = send(dispatcher, world, env), send(dispatcher, world, env)
    assert first.body["payload"] == second.body["payload"]
    assert first.body["response_id"] != second.body["response_id"]
    assert RequestLedger.select().count() == 0


def test_the_ledger_is_scoped_by_principal_and_org(dispatcher: CallbackDispatcher, world: World) -> None:
    env = envelope(CREATE, POSTMAN_USER)
    send(dispatcher, world, env)
    other = dataclasses.replace(env, payload={**POSTMAN_USER, "login": "x2"})
    assert send(dispatcher, world, other, principal="key-2").status == 200
    assert User.select().where(User.login == "x2").count() == 1


def test_failed_requests_are_not_recorded(dispatcher: CallbackDispatcher, world: World) -> None:
    fails(dispatcher, world, envelope(CREATE, {**POSTMAN_USER, "login": "ALICE"}), Conflict)
    fails(
        dispatcher,
        world,
        envelope("vendor.app.user_update.v1.0", {"id": world.carol.id, "name": "n", "email": "e@x"}),
        NotFound,
    )


def test_an_unexpected_fault_commits_nothing(
    dispatcher: CallbackDispatcher, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = users.user_write

    def write_then_crash(*args: Any) -> None:
        real(*args)
        raise RuntimeError("boom")

    monkeypatch.setattr(users, "user_write", write_then_crash)
    before = snapshot()
    with pytest.raises(RuntimeError):
        send(dispatcher, world, envelope(CREATE, POSTMAN_USER))
    assert snapshot() == before  # no user, no ledger row
