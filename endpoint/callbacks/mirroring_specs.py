"""The five mirroring callbacks as the catalogue serves them: ids, types, payload checks and services.

CTI forms differ from the v1 callbacks: callback ``cti.a.p.acgw.callback.v2.0~``, request and response
``…v1.1~``; each request type is the callback's own name (payload or not) and each success type inserts
``.ok`` before the version. Payloads are checked by ``mirroring_payloads``; the services live in
``mirroring`` (partner side) and ``mirroring_customers``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from endpoint.callbacks import mirroring, mirroring_customers
from endpoint.callbacks import mirroring_payloads as payloads
from endpoint.parsing.schemas import CompiledSchema

CALLBACK_PREFIX = "cti.a.p.acgw.callback.v2.0~"
REQUEST_PREFIX = "cti.a.p.acgw.request.v1.1~"
RESPONSE_PREFIX = "cti.a.p.acgw.response.v1.1~"

# service(P, payload, datacenter_url, parent org id) -> the payload out (None: no payload key)
Mirrored = Callable[[str, dict[str, Any], str | None, str], Any]


@dataclass(frozen=True, slots=True)
class MirroringCallback:
    """One mirroring callback. ``needs_datacenter``: context.datacenter_url is required (400 without)."""

    name: str
    schema: CompiledSchema
    service: Mirrored
    writes: bool
    needs_datacenter: bool
    rules: Callable[[dict[str, Any]], None] | None = None


CALLBACKS: list[MirroringCallback] = [
    MirroringCallback(
        "a.p.partner.mirroring.get_state.v1.0",
        payloads.EMPTY,
        lambda p, _pl, _dc, _pa: mirroring.partner_get_state(p),
        writes=False,
        needs_datacenter=False,
    ),
    MirroringCallback(
        "a.p.partner.mirroring.enable.v1.0",
        payloads.ENABLE,
        mirroring.partner_enable,
        writes=True,
        needs_datacenter=True,
        rules=payloads.check_enable,
    ),
    MirroringCallback(
        "a.p.partner.mirroring.reset.v1.0",
        payloads.EMPTY,
        lambda p, _pl, _dc, _pa: mirroring.partner_reset(p),
        writes=True,
        needs_datacenter=False,
    ),
    MirroringCallback(
        "a.p.customer.mirroring.get_state.v1.0",
        payloads.EMPTY,
        lambda p, _pl, dc, _pa: mirroring_customers.get_state(p, dc),
        writes=False,
        needs_datacenter=True,
    ),
    MirroringCallback(
        "a.p.customer.mirroring.set_state.v1.0",
        payloads.SET_STATE,
        lambda p, pl, dc, _pa: mirroring_customers.set_state(p, pl, dc),
        writes=True,
        needs_datacenter=True,
        rules=payloads.check_set_state,
    ),
]


def success_type(name: str) -> str:
    """``a.p.partner.mirroring.enable.v1.0`` -> ``…response.v1.1~a.p.partner.mirroring.enable.ok.v1.0``."""
    stem, _, version = name.rpartition(".v")
    return f"{RESPONSE_PREFIX}{stem}.ok.v{version}"
