"""Builders shared by the callback tests: a tenant tree with the Postman ids, envelopes, table snapshots."""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from endpoint.auth.identity import AuthenticatedUser
from endpoint.callbacks.dispatch import CallbackDispatcher
from endpoint.callbacks.envelope import Envelope
from endpoint.callbacks.responses import CallbackResponse
from endpoint.errors import ServiceError
from models import CORE_MODELS, PARTNER, Organization, User
from tests.support.builders import DATACENTER, create_customer, create_org, create_user, fast_hasher, map_org

# The ids the public Postman collection hard-codes (acronis-callbacks.md §11).
POSTMAN_PARTNER = "b9c1a52c-280e-45cd-be77-ba927fc42950"
POSTMAN_PARTNER_TENANT = "0dd47bbb-d065-447f-ab7c-06e05887078b"
POSTMAN_CUSTOMER = "36271ce5-d0c1-4c15-a09a-ff1ba35c6c0c"
POSTMAN_CUSTOMER_TENANT = "954ef80f-5acb-405b-81df-e850606b406d"
POSTMAN_USERS_TENANT = "00000000-0000-0000-0000-000000000000"
ENDPOINT_ID = "cti.a.p.acgw.endpoint.v1.0~vendor.app.endpoint.v1.0"
OTHER_DATACENTER = "https://us2-cloud.acronis.com"

SUB_TENANT = "11111111-1111-4111-8111-111111111111"
DEEP_TENANT = "22222222-2222-4222-8222-222222222222"
DISABLED_TENANT = "33333333-3333-4333-8333-333333333333"
OTHER_TENANT = "44444444-4444-4444-8444-444444444444"
OTHER_CUSTOMER_TENANT = "55555555-5555-4555-8555-555555555555"
FAR_TENANT = "66666666-6666-4666-8666-666666666666"
FREE_TENANT = "77777777-7777-4777-8777-777777777777"
SPARE_TENANT = "88888888-8888-4888-8888-888888888888"


@dataclass
class World:
    """Partner A (enabled, Postman id) with customers at depths 1 and 3, a sub-partner, and Partner B."""

    partner: Organization
    demo: Organization  # mapped to the Postman users tenant (00000000-...)
    postman_customer: Organization  # unmapped; the Postman tenant_mapping.write target
    sub: Organization  # sub-partner with its own enablement
    deep: Organization  # customer at depth 3: partner -> sub -> subsub -> deep
    disabled: Organization
    far: Organization  # mapped on another data center
    other: Organization  # Partner B
    other_customer: Organization
    admin: User
    alice: User
    bob: User
    carol: User  # Partner B's customer's user
    deep_user: User

    def acting(self, org: Organization | None = None) -> AuthenticatedUser:
        """The authenticated user of ``org`` (default: Partner A's admin)."""
        org = org or self.partner
        return AuthenticatedUser(
            user_id=str(uuid.uuid4()), login="admin", organization_id=org.id, organization_kind=org.kind
        )


def build_world() -> World:
    partner = create_org("Partner A", PARTNER, id=POSTMAN_PARTNER)
    map_org(partner, POSTMAN_PARTNER_TENANT)
    demo = create_customer("Demo customer", partner)
    map_org(demo, POSTMAN_USERS_TENANT)
    postman_customer = create_customer("Postman customer", partner, id=POSTMAN_CUSTOMER)
    sub = create_org("Sub partner", parent=partner)
    map_org(sub, SUB_TENANT)
    deep = create_customer("Deep customer", create_org("Sub-sub partner", parent=sub))
    map_org(deep, DEEP_TENANT)
    disabled = create_customer("Disabled customer", partner, active=False)
    map_org(disabled, DISABLED_TENANT)
    far = create_customer("Far customer", partner)
    map_org(far, FAR_TENANT, OTHER_DATACENTER)
    other = create_org("Partner B")
    map_org(other, OTHER_TENANT)
    other_customer = create_customer("B customer", other)
    map_org(other_customer, OTHER_CUSTOMER_TENANT)
    return World(
        partner=partner,
        demo=demo,
        postman_customer=postman_customer,
        sub=sub,
        deep=deep,
        disabled=disabled,
        far=far,
        other=other,
        other_customer=other_customer,
        admin=create_user("admin", partner),
        alice=create_user("alice", demo, name="Alice"),
        bob=create_user("bob", demo, name="Bob"),
        carol=create_user("carol", other_customer, name="Carol"),
        deep_user=create_user("dora", deep, name="Dora"),
    )


def snapshot() -> dict[str, list[str]]:
    """Every row of every core table, order-independent: equal snapshots mean nothing changed."""
    return {m._meta.table_name: sorted(repr(row) for row in m.select().tuples()) for m in CORE_MODELS}


def callback_id(name: str) -> str:
    return "cti.a.p.acgw.callback.v1.0~" + name


def request_type(name: str) -> str:
    return "cti.a.p.acgw.request.v1.0~" + name


# Short callback name -> its request type suffix (custom callbacks: the same name).
REQUEST_TYPES = {
    "a.p.enablement.read.v1.0": "a.p.empty.v1.0",
    "a.p.enablement.write.v1.0": "a.p.enablement.write.v1.0",
    "a.p.enablement.reset.v1.0": "a.p.empty.v1.0",
    "a.p.topology.read.v1.0": "a.p.topology.read.v1.0",
    "a.p.tenant_mapping.read.v1.0": "a.p.empty.v1.0",
    "a.p.tenant_mapping.write.v1.0": "a.p.tenant_mapping.write.v1.0",
}


def envelope(
    name: str,
    payload: dict[str, Any] | None = None,
    *,
    tenant_id: str = POSTMAN_USERS_TENANT,
    datacenter_url: str | None = DATACENTER,
    request_id: str | None = None,
    type_: str | None = None,
) -> Envelope:
    """An already-parsed envelope for callback ``name`` (short id, e.g. "vendor.app.users_read.v1.0")."""
    return Envelope(
        type=type_ or request_type(REQUEST_TYPES.get(name, name)),
        request_id=request_id or str(uuid.uuid4()),
        created_at="2023-04-10T15:33:01+00:00",
        callback_id=callback_id(name),
        endpoint_id=ENDPOINT_ID,
        tenant_id=tenant_id,
        datacenter_url=datacenter_url,
        payload=payload if payload is not None else {},
    )


def body(**overrides: Any) -> dict[str, Any]:
    """A valid request body (the docs' enablement.write example); top-level keys replaced by ``overrides``."""
    document: dict[str, Any] = {
        "type": request_type("a.p.enablement.write.v1.0"),
        "request_id": "7f1c2d9e-5b7a-4a61-9a8e-3c2b1d0e9f11",
        "created_at": "2023-04-10T15:33:01+00:00",
        "context": {
            "callback_id": callback_id("a.p.enablement.write.v1.0"),
            "endpoint_id": ENDPOINT_ID,
            "tenant_id": POSTMAN_PARTNER_TENANT,
            "datacenter_url": DATACENTER,
        },
        "payload": {"vendor_tenant_id": POSTMAN_PARTNER, "acronis_tenant_id": POSTMAN_PARTNER_TENANT},
    }
    document.update(overrides)
    return document


def context(**overrides: Any) -> dict[str, Any]:
    """The context of body() with some fields replaced (None removes a field)."""
    ctx = {**body()["context"], **overrides}
    return {k: v for k, v in ctx.items() if v is not None}


REUSED = "This request_id was already used for a different request."
POSTMAN_USER = {"login": "test.user", "name": "User", "email": "user@example.net"}
CREATE = "vendor.app.user_write.v1.0"
RESET = "vendor.app.reset_password.v1.0"


def send(
    dispatcher: CallbackDispatcher, world: World, env: Envelope, *, principal: str = "key-1", org: Any = None
) -> CallbackResponse:
    """Dispatch one envelope as ``org``'s user (default Partner A's admin) on a fresh event loop."""
    return asyncio.run(dispatcher.dispatch(principal, world.acting(org), env))


def fails(
    dispatcher: CallbackDispatcher, world: World, env: Envelope, error: type[ServiceError], **kw: Any
) -> ServiceError:
    """Dispatch, expect ``error``, and check that nothing changed in the database (ledger included)."""
    before = snapshot()
    with pytest.raises(error) as info:
        send(dispatcher, world, env, **kw)
    assert snapshot() == before
    return info.value


class RecordingHasher:
    """The injected async hasher: argon2 (cheap parameters) in a worker thread, recording where it ran."""

    def __init__(self) -> None:
        self.threads: list[str] = []
        self.hasher = fast_hasher()

    async def __call__(self, password: str) -> str:
        return await asyncio.to_thread(self._hash, password)

    def _hash(self, password: str) -> str:
        self.threads.append(threading.current_thread().name)
        return self.hasher.hash(password)
