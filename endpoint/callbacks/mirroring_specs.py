"""The five mirroring callbacks as the catalogue serves them: ids, types, payload schemas, services.

CTI forms differ from the v1 callbacks: callback ``cti.a.p.acgw.callback.v2.0~``, request and response
``…v1.1~``; each request type is the callback's own name (payload or not) and each success type inserts
``.ok`` before the version. Names are display data (1-255 characters, no control characters); settings
are a flat object of at most 32 scalar values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from endpoint.callbacks import mirroring
from endpoint.callbacks.schemas import EMPTY_PAYLOAD, NAME, UUID, CompiledSchema, compile_schema

CALLBACK_PREFIX = "cti.a.p.acgw.callback.v2.0~"
REQUEST_PREFIX = "cti.a.p.acgw.request.v1.1~"
RESPONSE_PREFIX = "cti.a.p.acgw.response.v1.1~"

SETTINGS = {
    "type": "object",
    "maxProperties": 32,
    "propertyNames": {"maxLength": 64},
    "additionalProperties": {"type": ["string", "number", "boolean", "null"], "maxLength": 1024},
}


def _closed(properties: dict[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(required),
        "additionalProperties": False,
        "properties": properties,
    }


_ENABLE = compile_schema(
    _closed(
        {"acronis_tenant_id": UUID, "acronis_tenant_name": NAME, "settings": SETTINGS},
        ("acronis_tenant_id", "acronis_tenant_name"),
    )
)
_SET_STATE = compile_schema(
    _closed(
        {
            "partner_tenant_id": UUID,
            "partner_tenant_name": NAME,
            "enabled": {
                "type": "array",
                "maxItems": 1000,
                "items": _closed(
                    {"acronis_tenant_id": UUID, "acronis_tenant_name": NAME, "settings": SETTINGS},
                    ("acronis_tenant_id", "acronis_tenant_name"),
                ),
            },
            "disabled": {
                "type": "array",
                "maxItems": 1000,
                "items": _closed({"acronis_tenant_id": UUID}, ("acronis_tenant_id",)),
            },
        },
        ("partner_tenant_id", "partner_tenant_name"),
    )
)
_EMPTY = compile_schema(EMPTY_PAYLOAD)

# (name, payload schema, service(p, payload, datacenter_url, parent) -> payload out, writes)
Mirrored = Callable[[str, dict[str, Any], str | None, str], Any]
CALLBACKS: list[tuple[str, CompiledSchema, Mirrored, bool]] = [
    (
        "a.p.partner.mirroring.get_state.v1.0",
        _EMPTY,
        lambda p, _pl, _dc, _pa: mirroring.partner_get_state(p),
        False,
    ),
    ("a.p.partner.mirroring.enable.v1.0", _ENABLE, mirroring.partner_enable, True),
    ("a.p.partner.mirroring.reset.v1.0", _EMPTY, lambda p, _pl, _dc, _pa: mirroring.partner_reset(p), True),
    (
        "a.p.customer.mirroring.get_state.v1.0",
        _EMPTY,
        lambda p, _pl, dc, _pa: mirroring.customer_get_state(p, dc),
        False,
    ),
    (
        "a.p.customer.mirroring.set_state.v1.0",
        _SET_STATE,
        lambda p, pl, dc, _pa: mirroring.customer_set_state(p, pl, dc),
        True,
    ),
]


def success_type(name: str) -> str:
    """``a.p.partner.mirroring.enable.v1.0`` -> ``…response.v1.1~a.p.partner.mirroring.enable.ok.v1.0``."""
    stem, _, version = name.rpartition(".v")
    return f"{RESPONSE_PREFIX}{stem}.ok.v{version}"
