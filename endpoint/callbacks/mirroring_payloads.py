"""Payloads of the five mirroring callbacks: their JSON Schemas, and the rules a schema cannot say.

Names (``acronis_tenant_name``, ``partner_tenant_name``) are display data: 1-255 characters without control
characters. ``settings`` (the CyberApp's "Additional settings" fields) is a flat object of at most 32 keys of
at most 64 characters whose values are JSON scalars, strings at most 1 KiB of UTF-8. A settings error never
names a key or quotes a value: the message is the same for every violation, so nothing a user typed into
those fields reaches the answer or the log.
"""

from __future__ import annotations

from typing import Any

from endpoint.callbacks.schemas import EMPTY_PAYLOAD
from endpoint.errors import PayloadError
from endpoint.parsing.schemas import NAME, UUID, CompiledSchema, closed_object, compile_schema

MAX_SETTINGS = 32
MAX_SETTINGS_KEY = 64  # characters
MAX_SETTINGS_STRING = 1024  # bytes of UTF-8
MAX_CUSTOMERS = 1000  # items per set_state list

# Structure only: what settings may hold is checked by check_settings, with one message for every breach.
_SETTINGS: dict[str, Any] = {"type": "object"}


def _tenants(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "maxItems": MAX_CUSTOMERS, "items": item}


EMPTY = compile_schema(EMPTY_PAYLOAD)  # get_state and reset: the payload is absent (or {})
ENABLE = compile_schema(
    closed_object(
        {"acronis_tenant_id": UUID, "acronis_tenant_name": NAME, "settings": _SETTINGS},
        ("acronis_tenant_id", "acronis_tenant_name"),
    )
)
SET_STATE = compile_schema(
    closed_object(
        {
            "partner_tenant_id": UUID,
            "partner_tenant_name": NAME,
            "enabled": _tenants(
                closed_object(
                    {"acronis_tenant_id": UUID, "acronis_tenant_name": NAME, "settings": _SETTINGS},
                    ("acronis_tenant_id", "acronis_tenant_name"),
                )
            ),
            "disabled": _tenants(closed_object({"acronis_tenant_id": UUID}, ("acronis_tenant_id",))),
        },
        ("partner_tenant_id", "partner_tenant_name"),
    )
)
SCHEMAS: dict[str, CompiledSchema] = {"enable": ENABLE, "set_state": SET_STATE, "empty": EMPTY}


def settings_ok(settings: dict[str, Any]) -> bool:
    """Flat, at most 32 keys of at most 64 characters, scalar values, strings at most 1 KiB of UTF-8."""
    if len(settings) > MAX_SETTINGS:
        return False
    for key, value in settings.items():
        if len(key) > MAX_SETTINGS_KEY:
            return False
        if isinstance(value, str):
            # Lone surrogates never get here (parsing/strict_json.py refuses them): encode cannot fail.
            if len(value) > MAX_SETTINGS_STRING or len(value.encode("utf-8")) > MAX_SETTINGS_STRING:
                return False
        elif value is not None and not isinstance(value, bool | int | float):
            return False
    return True


def check_settings(settings: dict[str, Any] | None, path: str) -> None:
    """:raise PayloadError: ``settings`` breaks a limit (the message names the limits, never the content)."""
    if settings is not None and not settings_ok(settings):
        raise PayloadError(
            f"Malformed request: {path} must be a flat object of at most {MAX_SETTINGS} keys of at most "
            f"{MAX_SETTINGS_KEY} characters, each value a string of at most 1 KiB, a number, a boolean or "
            "null.",
            reason=f"mirroring: {path} over its limits",
        )


def check_enable(payload: dict[str, Any]) -> None:
    """partner.mirroring.enable, after its schema. :raise PayloadError: settings over their limits."""
    check_settings(payload.get("settings"), "payload.settings")


def check_set_state(payload: dict[str, Any]) -> None:
    """customer.mirroring.set_state, after its schema: at least one list, every tenant id once.

    :raise PayloadError: neither list, an id twice (in one list or in both), or settings over their limits.
    """
    enabled, disabled = payload.get("enabled"), payload.get("disabled")
    if enabled is None and disabled is None:
        raise PayloadError("Malformed request: payload needs enabled or disabled.")
    seen: set[str] = set()
    for name, items in (("enabled", enabled or []), ("disabled", disabled or [])):
        for index, item in enumerate(items):
            tenant = item["acronis_tenant_id"].lower()
            if tenant in seen:
                raise PayloadError(
                    f"Malformed request: payload.{name}[{index}].acronis_tenant_id appears twice."
                )
            seen.add(tenant)
            if name == "enabled":
                check_settings(item.get("settings"), f"payload.enabled[{index}].settings")
