"""The callback table: full callback id -> request type, success type, payload schema, ledger use, service."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from endpoint.callbacks import enablement, mapping, users
from endpoint.callbacks.responses import RESPONSE_PREFIX
from endpoint.callbacks.schemas import (
    EMPTY_PAYLOAD,
    ENABLEMENT_WRITE_PAYLOAD,
    MAPPING_WRITE_PAYLOAD,
    USER_ID_PAYLOAD,
    USER_UPDATE_PAYLOAD,
    USER_WRITE_PAYLOAD,
)
from endpoint.errors import PayloadError
from endpoint.parsing.schemas import CompiledSchema, compile_schema

log = logging.getLogger(__name__)

CALLBACK_PREFIX = "cti.a.p.acgw.callback.v1.0~"
REQUEST_PREFIX = "cti.a.p.acgw.request.v1.0~"
_APP_CODE_RE = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*", re.ASCII)

_EMPTY = compile_schema(EMPTY_PAYLOAD)
_ENABLEMENT_WRITE = compile_schema(ENABLEMENT_WRITE_PAYLOAD)
_MAPPING_WRITE = compile_schema(MAPPING_WRITE_PAYLOAD)
_USER_WRITE = compile_schema(USER_WRITE_PAYLOAD)
_USER_UPDATE = compile_schema(USER_UPDATE_PAYLOAD)
_USER_ID = compile_schema(USER_ID_PAYLOAD)


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a service adapter needs: the acting org, the request context, the payload, a new password."""

    organization_id: str
    organization_kind: str | None  # as authenticated in this unit of work (None: re-read it)
    tenant_id: str
    datacenter_url: str | None
    payload: dict[str, Any]
    password: str | None = field(default=None, repr=False)
    password_hash: str | None = field(default=None, repr=False)


Service = Callable[[CallContext], dict[str, Any] | list[Any] | None]


@dataclass(frozen=True, slots=True)
class CallbackSpec:
    """One served callback. ``writes``: recorded in the ledger with its effect."""

    callback_id: str
    request_type: str
    response_type: str
    payload_schema: CompiledSchema
    service: Service
    writes: bool
    needs_datacenter: bool = False
    # reset_password: a password is generated and hashed before the database call, the ledger keeps the
    # answer without it, and a retry performs a new reset instead of replaying (§13 point 12).
    new_password: bool = False
    # False for mirroring: no X-CyberApp-Auth; the acting party is the Acronis partner context.tenant_id.
    end_user: bool = True
    # Payload rules a JSON Schema cannot say, run right after it (raise PayloadError).
    payload_rules: Callable[[dict[str, Any]], None] | None = None

    @property
    def replayable(self) -> bool:
        return not self.new_password


def _datacenter(call: CallContext) -> str:
    if call.datacenter_url is None:  # the dispatcher checks this first; never store an empty data center
        raise PayloadError("Malformed request: context.datacenter_url is required for this callback.")
    return call.datacenter_url


def _mapping_read(call: CallContext) -> dict[str, Any]:
    return mapping.read(call.organization_id, _datacenter(call), call.organization_kind)


def _users_read(call: CallContext) -> dict[str, Any]:
    return users.users_read(call.organization_id, call.tenant_id, call.organization_kind)


def _enablement_write(call: CallContext) -> None:
    p = call.payload
    enablement.write(call.organization_id, p["vendor_tenant_id"], p["acronis_tenant_id"], _datacenter(call))


def _enablement_reset(call: CallContext) -> None:
    enablement.reset(call.organization_id)


def _mapping_write(call: CallContext) -> None:
    mapping.write(call.organization_id, call.payload["modified"], _datacenter(call))


def _user_write(call: CallContext) -> None:
    p = call.payload
    users.user_write(call.organization_id, call.tenant_id, p["login"], p["name"], p["email"])


def _user_update(call: CallContext) -> None:
    p = call.payload
    users.user_update(call.organization_id, call.tenant_id, p["id"], p["name"], p["email"])


def _user_delete(call: CallContext) -> None:
    users.user_delete(call.organization_id, call.tenant_id, call.payload["id"])


def _reset_password(call: CallContext) -> dict[str, Any]:
    if call.password is None or call.password_hash is None:
        raise RuntimeError("reset_password needs a password hashed before the database call")
    users.reset_password(call.organization_id, call.tenant_id, call.payload["id"], call.password_hash)
    return {"password": call.password}


def build_catalogue(app_code: str, mirroring_parent: str | None = None) -> Mapping[str, CallbackSpec]:
    """Every served callback keyed by its full callback id; custom ones under ``app_code`` (settings);
    the mirroring ones when ``mirroring_parent`` (callbacks.mirrored_partners_parent) is given.

    :raise ValueError: when ``app_code`` cannot form a CTI (two dot-separated lower-case segments).
    """
    if not _APP_CODE_RE.fullmatch(app_code):
        raise ValueError(f"app_code {app_code!r} must look like 'vendor.app'")

    def spec(
        name: str,
        request: str,
        response: str,
        schema: CompiledSchema,
        service: Service,
        *,
        writes: bool = False,
        needs_datacenter: bool = False,
        new_password: bool = False,
    ) -> CallbackSpec:
        return CallbackSpec(
            callback_id=CALLBACK_PREFIX + name,
            request_type=REQUEST_PREFIX + request,
            response_type=RESPONSE_PREFIX + response,
            payload_schema=schema,
            service=service,
            writes=writes,
            needs_datacenter=needs_datacenter,
            new_password=new_password,
        )

    empty, no_content = "a.p.empty.v1.0", "a.p.success_no_content.v1.0"
    specs = [
        spec(
            "a.p.enablement.read.v1.0", empty, "a.p.enablement.read.ok.v1.0", _EMPTY,
            lambda c: enablement.read(c.organization_id, c.organization_kind),
        ),
        spec(
            "a.p.enablement.write.v1.0", "a.p.enablement.write.v1.0", no_content, _ENABLEMENT_WRITE,
            _enablement_write, writes=True, needs_datacenter=True,
        ),
        spec("a.p.enablement.reset.v1.0", empty, no_content, _EMPTY, _enablement_reset, writes=True),
        spec(
            "a.p.topology.read.v1.0", "a.p.topology.read.v1.0", "a.p.topology.read.ok.v1.0", _EMPTY,
            lambda c: mapping.topology(c.organization_id, c.organization_kind),
        ),
        spec(
            "a.p.tenant_mapping.read.v1.0", empty, "a.p.tenant_mapping.read.ok.v1.0", _EMPTY,
            _mapping_read, needs_datacenter=True,
        ),
        spec(
            "a.p.tenant_mapping.write.v1.0", "a.p.tenant_mapping.write.v1.0", no_content, _MAPPING_WRITE,
            _mapping_write, writes=True, needs_datacenter=True,
        ),
    ]  # fmt: skip
    # Custom callbacks: callback id = request type (§9.3), success type "<name>_success".
    custom: list[tuple[str, CompiledSchema, Service, bool]] = [
        (
            "users_read",
            _EMPTY,
            lambda c: users.users_read(c.organization_id, c.tenant_id, c.organization_kind),
            False,
        ),
        ("user_write", _USER_WRITE, _user_write, True),
        ("user_update", _USER_UPDATE, _user_update, True),
        ("user_delete", _USER_ID, _user_delete, True),
        ("reset_password", _USER_ID, _reset_password, True),
    ]
    for name, schema, service, writes in custom:
        ident = f"{app_code}.{name}.v1.0"
        success = f"{app_code}.{name}_success.v1.0"
        fresh = service is _reset_password
        specs.append(spec(ident, ident, success, schema, service, writes=writes, new_password=fresh))
    if mirroring_parent is not None:
        specs += _mirroring(mirroring_parent)
    return {s.callback_id: s for s in specs}


def _mirroring(parent: str) -> list[CallbackSpec]:
    from endpoint.callbacks import mirroring_specs as m  # imports this module's types: not at the top

    def adapt(service: m.Mirrored) -> Service:
        return lambda c: service(c.tenant_id, c.payload, c.datacenter_url, parent)

    return [
        CallbackSpec(
            callback_id=m.CALLBACK_PREFIX + cb.name,
            request_type=m.REQUEST_PREFIX + cb.name,
            response_type=m.success_type(cb.name),
            payload_schema=cb.schema,
            service=adapt(cb.service),
            writes=cb.writes,
            needs_datacenter=cb.needs_datacenter,
            end_user=False,
            payload_rules=cb.rules,
        )
        for cb in m.CALLBACKS
    ]
