"""Mirrored enablement (§9.4 rules): every rule through the dispatcher, as the web layer calls it."""

from __future__ import annotations

import uuid
from typing import Any

import peewee as pw
import pytest

from endpoint.callbacks import enablement
from endpoint.callbacks.dispatch import CallbackDispatcher
from endpoint.callbacks.envelope import Envelope
from endpoint.callbacks.responses import CallbackResponse
from endpoint.errors import Conflict, Forbidden, PayloadError
from endpoint.executors import DatabaseRunner
from models import CUSTOMER, PARTNER, Organization, User
from models.mirroring import MirroredTenant
from tests.endpoint.callbacks import DATACENTER, POSTMAN_PARTNER_TENANT, World
from tests.factories import create_org, create_user

P = "aaaaaaaa-0000-4000-8000-000000000001"
OTHER_P = "aaaaaaaa-0000-4000-8000-000000000002"
C1 = "cccccccc-0000-4000-8000-000000000001"
C2 = "cccccccc-0000-4000-8000-000000000002"
ENDPOINT_V11 = "cti.a.p.acgw.endpoint.v1.1~vendor.app.endpoint.v1.1"
PRINCIPAL = "acme-key"


@pytest.fixture
def parent(database: pw.Database) -> Organization:
    return create_org("Mirrored partners")


@pytest.fixture
def mirroring(runner: DatabaseRunner, hasher: Any, parent: Organization) -> CallbackDispatcher:
    return CallbackDispatcher("vendor.app", runner, hasher, parent.id)


def call(
    dispatcher: CallbackDispatcher,
    name: str,
    payload: dict[str, Any] | None = None,
    *,
    tenant: str = P,
    request_id: str | None = None,
    datacenter: str | None = DATACENTER,
) -> CallbackResponse:
    envelope = Envelope(
        type="cti.a.p.acgw.request.v1.1~" + name,
        request_id=request_id or str(uuid.uuid4()),
        created_at="0001-01-01T00:00:00Z",  # the zero time of the docs' examples
        callback_id="cti.a.p.acgw.callback.v2.0~" + name,
        endpoint_id=ENDPOINT_V11,
        tenant_id=tenant,
        datacenter_url=datacenter,
        payload=payload or {},
    )
    return dispatcher.answer_for_tenant(PRINCIPAL, envelope)


def payload_of(response: CallbackResponse) -> Any:
    assert response.status == 200
    return response.body.get("payload")


def enable(d: CallbackDispatcher, name: str = "Acme Reseller", **extra: Any) -> CallbackResponse:
    return call(
        d, "a.p.partner.mirroring.enable.v1.0", {"acronis_tenant_id": P, "acronis_tenant_name": name, **extra}
    )


def set_state(d: CallbackDispatcher, **lists: Any) -> CallbackResponse:
    body = {"partner_tenant_id": P, "partner_tenant_name": "Acme Reseller", **lists}
    return call(d, "a.p.customer.mirroring.set_state.v1.0", body)


def partner_state(d: CallbackDispatcher) -> dict[str, Any]:
    return payload_of(call(d, "a.p.partner.mirroring.get_state.v1.0"))


def customers(d: CallbackDispatcher) -> list[dict[str, Any]]:
    return payload_of(call(d, "a.p.customer.mirroring.get_state.v1.0"))


def test_types_and_the_partner_lifecycle(mirroring: CallbackDispatcher, parent: Organization) -> None:
    got = call(mirroring, "a.p.partner.mirroring.get_state.v1.0")
    assert got.body["type"] == "cti.a.p.acgw.response.v1.1~a.p.partner.mirroring.get_state.ok.v1.0"
    assert payload_of(got) == {"state": "DISABLED"}  # never seen
    enabled = enable(mirroring)
    assert enabled.body["type"] == "cti.a.p.acgw.response.v1.1~a.p.partner.mirroring.enable.ok.v1.0"
    out = payload_of(enabled)
    assert out["state"] == "ENABLED" and out["acronis_tenant_id"] == P
    org = Organization.get_by_id(out["vendor_tenant_id"])
    assert (org.kind, org.parent_id, org.name, org.active) == (PARTNER, parent.id, "Acme Reseller", True)
    assert partner_state(mirroring) == {"state": "ENABLED"}
    again = payload_of(enable(mirroring, "Acme Reseller GmbH", settings={"region": "eu"}))
    assert again["vendor_tenant_id"] == out["vendor_tenant_id"]  # the same MP every time
    assert Organization.get_by_id(out["vendor_tenant_id"]).name == "Acme Reseller GmbH"
    assert partner_state(mirroring) == {"state": "ENABLED", "settings": {"region": "eu"}}
    reset = call(mirroring, "a.p.partner.mirroring.reset.v1.0")
    assert reset.status == 200 and "payload" not in reset.body
    assert reset.body["type"] == "cti.a.p.acgw.response.v1.1~a.p.partner.mirroring.reset.ok.v1.0"
    assert partner_state(mirroring) == {"state": "DISABLED"}
    assert not Organization.get_by_id(out["vendor_tenant_id"]).active  # kept, inactive
    assert call(mirroring, "a.p.partner.mirroring.reset.v1.0").status == 200  # the end state holds
    assert call(mirroring, "a.p.partner.mirroring.reset.v1.0", tenant=OTHER_P).status == 200  # unknown P
    enable(mirroring)  # settings kept when not sent
    assert partner_state(mirroring) == {"state": "ENABLED", "settings": {"region": "eu"}}


def test_customers_are_enabled_listed_disabled_and_kept(mirroring: CallbackDispatcher) -> None:
    mp = payload_of(enable(mirroring))["vendor_tenant_id"]
    assert customers(mirroring) == []
    set_state(
        mirroring,
        enabled=[
            {"acronis_tenant_id": C2, "acronis_tenant_name": "Beta"},
            {"acronis_tenant_id": C1, "acronis_tenant_name": "Alpha", "settings": {"seats": 5}},
        ],
    )
    listed = customers(mirroring)
    assert [c["acronis_tenant_id"] for c in listed] == [C1, C2]  # ordered by name
    assert listed[0]["settings"] == {"seats": 5} and listed[1]["settings"] == {}
    alpha = Organization.get_by_id(listed[0]["vendor_tenant_id"])
    assert (alpha.kind, alpha.parent_id, alpha.name) == (CUSTOMER, mp, "Alpha")
    create_user("alpha-admin", alpha, "pw-123456789012")
    set_state(
        mirroring, disabled=[{"acronis_tenant_id": C1}, {"acronis_tenant_id": OTHER_P}]
    )  # unknown: no-op
    assert [c["acronis_tenant_id"] for c in customers(mirroring)] == [C2]
    assert (
        not Organization.get_by_id(alpha.id).active
        and User.select().where(User.organization == alpha).exists()
    )
    set_state(mirroring, enabled=[{"acronis_tenant_id": C1, "acronis_tenant_name": "Alpha 2"}])
    back = customers(mirroring)[0]
    assert back["vendor_tenant_id"] == alpha.id and back["settings"] == {
        "seats": 5
    }  # same org, settings kept
    call(mirroring, "a.p.partner.mirroring.reset.v1.0")
    assert not Organization.get_by_id(alpha.id).active  # reset disables every customer
    assert MirroredTenant.select().where(MirroredTenant.enabled).count() == 0
    enable(mirroring)
    assert customers(mirroring) == []  # a re-enabled partner gets its customers back only through set_state


def test_customer_lists_are_per_data_center(mirroring: CallbackDispatcher) -> None:
    enable(mirroring)
    set_state(mirroring, enabled=[{"acronis_tenant_id": C1, "acronis_tenant_name": "Alpha"}])
    other = call(
        mirroring, "a.p.customer.mirroring.get_state.v1.0", datacenter="https://us2-cloud.acronis.com"
    )
    assert payload_of(other) == []


ENABLE, SET_STATE = "a.p.partner.mirroring.enable.v1.0", "a.p.customer.mirroring.set_state.v1.0"


def partner(name: str = "X", **extra: Any) -> dict[str, Any]:
    return {"acronis_tenant_id": P, "acronis_tenant_name": name, **extra}


def customer_lists(**lists: Any) -> dict[str, Any]:
    return {"partner_tenant_id": P, "partner_tenant_name": "X", **lists}


A_ENABLED = [{"acronis_tenant_id": C1, "acronis_tenant_name": "A"}]


@pytest.mark.parametrize(
    ("name", "payload", "error", "fragment"),
    [
        (ENABLE, {**partner(), "acronis_tenant_id": OTHER_P}, Forbidden, ""),
        (SET_STATE, {**customer_lists(disabled=[]), "partner_tenant_id": OTHER_P}, Forbidden, ""),
        (SET_STATE, customer_lists(), PayloadError, "enabled or disabled"),
        (
            SET_STATE,
            customer_lists(enabled=A_ENABLED, disabled=[{"acronis_tenant_id": C1}]),
            PayloadError,
            "twice",
        ),
        (ENABLE, partner(""), PayloadError, "acronis_tenant_name"),
        (ENABLE, partner("a\nb"), PayloadError, "control"),
        (ENABLE, partner("x" * 256), PayloadError, "255"),
        (ENABLE, partner(settings={"k": {"nested": 1}}), PayloadError, "settings"),
        (ENABLE, partner(settings={str(i): i for i in range(33)}), PayloadError, "settings"),
        (ENABLE, partner(settings={"k" * 65: 1}), PayloadError, "settings"),
        (ENABLE, partner(settings={"k": "v" * 1025}), PayloadError, "settings"),
    ],
)
def test_refusals_change_nothing(
    mirroring: CallbackDispatcher, name: str, payload: dict[str, Any], error: type[Exception], fragment: str
) -> None:
    if name.startswith("a.p.customer"):
        enable(mirroring)
    before = (Organization.select().count(), MirroredTenant.select().count())
    with pytest.raises(error) as info:
        call(mirroring, name, payload)
    assert fragment in getattr(info.value, "message", "")
    assert (Organization.select().count(), MirroredTenant.select().count()) == before


def test_customer_callbacks_need_an_enabled_mirrored_partner(mirroring: CallbackDispatcher) -> None:
    with pytest.raises(Conflict) as info:
        customers(mirroring)
    assert info.value.message == "The partner is not enabled."
    enable(mirroring)
    call(mirroring, "a.p.partner.mirroring.reset.v1.0")
    with pytest.raises(Conflict) as info:
        set_state(mirroring, enabled=A_ENABLED)
    assert info.value.message == "The partner is not enabled."


def test_one_enablement_model_per_partner(mirroring: CallbackDispatcher, world: World) -> None:
    """A mapped partner cannot be mirrored, a mirrored tenant cannot be mapped, ids held elsewhere: 409."""
    with pytest.raises(Conflict) as info:
        call(
            mirroring,
            "a.p.partner.mirroring.enable.v1.0",
            {"acronis_tenant_id": POSTMAN_PARTNER_TENANT, "acronis_tenant_name": "Mapped"},
            tenant=POSTMAN_PARTNER_TENANT,
        )
    assert info.value.message == "This Acronis tenant is already connected with credentials."
    enable(mirroring)
    with pytest.raises(Conflict):  # P itself (a partner) as a customer
        set_state(mirroring, enabled=[{"acronis_tenant_id": P, "acronis_tenant_name": "Me"}])
    with pytest.raises(Conflict):  # a tenant mapped with credentials
        set_state(
            mirroring, enabled=[{"acronis_tenant_id": POSTMAN_PARTNER_TENANT, "acronis_tenant_name": "X"}]
        )
    set_state(mirroring, enabled=[{"acronis_tenant_id": C1, "acronis_tenant_name": "A"}])
    call(
        mirroring,
        "a.p.partner.mirroring.enable.v1.0",
        {"acronis_tenant_id": OTHER_P, "acronis_tenant_name": "Other"},
        tenant=OTHER_P,
    )
    other = {"partner_tenant_id": OTHER_P, "partner_tenant_name": "Other"}
    before = MirroredTenant.select().count()
    both = [{"acronis_tenant_id": C2, "acronis_tenant_name": "B"}, *A_ENABLED]
    with pytest.raises(Conflict) as info:  # C1 is P's customer: nothing is written, C2 included
        call(mirroring, SET_STATE, {**other, "enabled": both}, tenant=OTHER_P)
    assert info.value.message == "This Acronis tenant belongs to another partner."
    assert MirroredTenant.select().count() == before  # C2 was not created either
    mapped_partner = world.partner
    with pytest.raises(Conflict) as info:
        enablement.write(mapped_partner.id, mapped_partner.id, P, DATACENTER)
    assert "enabled by mirroring" in info.value.message


def test_a_repeated_request_id_answers_the_stored_response(mirroring: CallbackDispatcher) -> None:
    request_id = str(uuid.uuid4())
    first = call(
        mirroring,
        "a.p.partner.mirroring.enable.v1.0",
        {"acronis_tenant_id": P, "acronis_tenant_name": "A"},
        request_id=request_id,
    )
    again = call(
        mirroring,
        "a.p.partner.mirroring.enable.v1.0",
        {"acronis_tenant_id": P, "acronis_tenant_name": "A"},
        request_id=request_id,
    )
    assert again.body == first.body  # the ledger's answer, response_id included
    with pytest.raises(Conflict):  # the same request id for another request
        call(mirroring, "a.p.partner.mirroring.reset.v1.0", request_id=request_id)
    assert MirroredTenant.select().count() == 1


def test_mirroring_off_leaves_the_ids_unknown(dispatcher: CallbackDispatcher, database: pw.Database) -> None:
    assert dispatcher.needs_end_user("cti.a.p.acgw.callback.v2.0~a.p.partner.mirroring.enable.v1.0")
    with pytest.raises(PayloadError, match="unknown callback_id"):
        call(dispatcher, "a.p.partner.mirroring.get_state.v1.0")


def test_custom_callbacks_reach_enabled_mirrored_customers_only(mirroring: CallbackDispatcher) -> None:
    from endpoint.callbacks import users

    mp = payload_of(enable(mirroring))["vendor_tenant_id"]
    set_state(mirroring, enabled=[{"acronis_tenant_id": C1, "acronis_tenant_name": "A"}])
    customer = MirroredTenant.get(MirroredTenant.acronis_tenant_id == C1).organization
    create_user("alpha-user", customer, "pw-123456789012")
    assert [u["name"] for u in users.users_read(mp, C1)["items"]] == ["alpha-user"]
    set_state(mirroring, disabled=[{"acronis_tenant_id": C1}])
    with pytest.raises(Forbidden):
        users.users_read(mp, C1)
    set_state(mirroring, enabled=[{"acronis_tenant_id": C1, "acronis_tenant_name": "A"}])
    call(mirroring, "a.p.partner.mirroring.reset.v1.0")  # a customer of a disabled partner: 403 too
    enable(mirroring)
    with pytest.raises(Forbidden):
        users.users_read(mp, C1)
