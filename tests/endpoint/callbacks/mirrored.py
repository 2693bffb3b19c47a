"""Builders shared by the mirroring tests: envelopes for the five v2 callbacks and short-hand calls."""

from __future__ import annotations

import uuid
from typing import Any

from endpoint.callbacks.dispatch import CallbackDispatcher
from endpoint.callbacks.envelope import Envelope
from endpoint.callbacks.responses import CallbackResponse
from models import CORE_MODELS, RequestLedger
from models.mirroring import MirroredTenant
from tests.support.builders import DATACENTER

P = "aaaaaaaa-0000-4000-8000-000000000001"
OTHER_P = "aaaaaaaa-0000-4000-8000-000000000002"
C1 = "cccccccc-0000-4000-8000-000000000001"
C2 = "cccccccc-0000-4000-8000-000000000002"
C3 = "cccccccc-0000-4000-8000-000000000003"
ENDPOINT_V11 = "cti.a.p.acgw.endpoint.v1.1~vendor.app.endpoint.v1.1"
PRINCIPAL = "acme-key"
ZERO_TIME = "0001-01-01T00:00:00Z"  # created_at in the docs' mirroring examples

GET_PARTNER = "a.p.partner.mirroring.get_state.v1.0"
ENABLE = "a.p.partner.mirroring.enable.v1.0"
RESET = "a.p.partner.mirroring.reset.v1.0"
GET_CUSTOMERS = "a.p.customer.mirroring.get_state.v1.0"
SET_STATE = "a.p.customer.mirroring.set_state.v1.0"


def mirroring_envelope(
    name: str,
    payload: dict[str, Any] | None = None,
    *,
    tenant: str = P,
    request_id: str | None = None,
    datacenter: str | None = DATACENTER,
) -> Envelope:
    return Envelope(
        type="cti.a.p.acgw.request.v1.1~" + name,
        request_id=request_id or str(uuid.uuid4()),
        created_at=ZERO_TIME,
        callback_id="cti.a.p.acgw.callback.v2.0~" + name,
        endpoint_id=ENDPOINT_V11,
        tenant_id=tenant,
        datacenter_url=datacenter,
        payload=payload or {},
    )


def call(
    dispatcher: CallbackDispatcher,
    name: str,
    payload: dict[str, Any] | None = None,
    *,
    principal: str = PRINCIPAL,
    **envelope: Any,
) -> CallbackResponse:
    """One mirroring callback as the web layer runs it (no end user), in the test's connection."""
    return dispatcher.answer_for_tenant(principal, mirroring_envelope(name, payload, **envelope))


def payload_of(response: CallbackResponse) -> Any:
    assert response.status == 200
    return response.body.get("payload")


def partner(name: str = "Acme Reseller", tenant: str = P, **extra: Any) -> dict[str, Any]:
    """partner.mirroring.enable's payload."""
    return {"acronis_tenant_id": tenant, "acronis_tenant_name": name, **extra}


def lists(partner_name: str = "Acme Reseller", tenant: str = P, **items: Any) -> dict[str, Any]:
    """customer.mirroring.set_state's payload with ``enabled`` and/or ``disabled``."""
    return {"partner_tenant_id": tenant, "partner_tenant_name": partner_name, **items}


def on(tenant: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"acronis_tenant_id": tenant, "acronis_tenant_name": name, **extra}


def off(tenant: str) -> dict[str, Any]:
    return {"acronis_tenant_id": tenant}


def enable(d: CallbackDispatcher, name: str = "Acme Reseller", **extra: Any) -> str:
    """Enable P; MP's vendor id."""
    return str(payload_of(call(d, ENABLE, partner(name, **extra)))["vendor_tenant_id"])


def set_state(d: CallbackDispatcher, **items: Any) -> CallbackResponse:
    return call(d, SET_STATE, lists(**items))


def customers(d: CallbackDispatcher, **envelope: Any) -> list[dict[str, Any]]:
    listed = payload_of(call(d, GET_CUSTOMERS, **envelope))
    assert isinstance(listed, list)
    return listed


def partner_state(d: CallbackDispatcher) -> dict[str, Any]:
    return dict(payload_of(call(d, GET_PARTNER)))


def snapshot(*, ledger: bool = True) -> dict[str, list[str]]:
    """Every row of the core tables and the mirrored tenants (the ledger too unless ``ledger`` is False):
    equal snapshots mean nothing changed."""
    models = [m for m in [*CORE_MODELS, MirroredTenant] if ledger or m is not RequestLedger]
    return {m._meta.table_name: sorted(repr(row) for row in m.select().tuples()) for m in models}
