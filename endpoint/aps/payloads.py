"""APS request inputs: JSON Schemas and parse_*(raw) -> frozen dataclasses or values (PayloadError otherwise).

The controller adds aps metadata (status, subscription, revision, links) and may add properties a newer
APP-META declares, so APS objects are open; only the fields below are read, each strictly typed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from endpoint.errors import PayloadError
from endpoint.parsing.json_body import parse_json_object
from endpoint.parsing.schemas import EMAIL, LOGIN, NAME, UUID, compile_schema, first_error_message

MAX_SETTINGS_BYTES = 16 * 1024
# A package version as APP-META writes it ("1.0", "2.3-14"): bounded, printable, nothing to escape in a log.
_VERSION = re.compile(rb"[A-Za-z0-9._+~-]{1,64}")
_VERSION_RULE = "Bad request: version must be given once, 1-64 letters, digits or . _ + ~ -."

_APS_TYPE = {"type": "string", "minLength": 1, "maxLength": 255, "format": "text"}
_APS_REF = {
    "type": "object",
    "required": ["aps"],
    "properties": {"aps": {"type": "object", "required": ["id"], "properties": {"id": UUID}}},
}
_APS_NEW = {
    "type": "object",
    "required": ["id", "type"],
    "maxProperties": 32,
    "properties": {"id": UUID, "type": _APS_TYPE},
}
_APS_ANY = {"type": "object", "maxProperties": 32, "properties": {"id": UUID, "type": _APS_TYPE}}
_LIMIT = {
    "type": "object",
    "maxProperties": 8,
    "properties": {"limit": {"type": ["integer", "null"], "minimum": -1, "maximum": 10**9}},
}
_ADMIN = {
    "type": "object",
    "required": ["login"],
    "maxProperties": 8,
    "properties": {"login": LOGIN, "name": NAME, "email": EMAIL},
}


def _open(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "maxProperties": 128, "properties": properties}


APP_SCHEMA = _open({"aps": _APS_NEW}, ("aps",))
APP_UPDATE_SCHEMA = _open({"aps": _APS_ANY})
TENANT_SCHEMA = _open(
    {"aps": _APS_NEW, "name": NAME, "account": _APS_REF, "USERS": _LIMIT, "admin": _ADMIN}, ("aps",)
)
TENANT_UPDATE_SCHEMA = _open({"aps": _APS_ANY, "name": NAME, "USERS": _LIMIT})
USER_SCHEMA = _open(
    {"aps": _APS_NEW, "tenant": _APS_REF, "login": LOGIN, "name": NAME, "email": EMAIL},
    ("aps", "tenant", "login", "email"),
)
USER_UPDATE_SCHEMA = _open({"aps": _APS_ANY, "name": NAME, "email": EMAIL})
EVENT_SCHEMA = _open(
    {
        "event": {"type": "string", "minLength": 1, "maxLength": 512, "format": "text"},
        "source": {"type": "object", "required": ["id"], "properties": {"id": UUID, "type": _APS_TYPE}},
    },
    ("event", "source"),
)
_VALIDATORS = {
    name: compile_schema(schema)
    for name, schema in {
        "app": APP_SCHEMA,
        "app-update": APP_UPDATE_SCHEMA,
        "tenant": TENANT_SCHEMA,
        "tenant-update": TENANT_UPDATE_SCHEMA,
        "user": USER_SCHEMA,
        "user-update": USER_UPDATE_SCHEMA,
        "event": EVENT_SCHEMA,
    }.items()
}


@dataclass(frozen=True, slots=True)
class AppInput:
    aps_id: str | None
    aps_type: str | None
    settings: dict[str, Any]  # every top-level key except "aps"


@dataclass(frozen=True, slots=True)
class AdminInput:
    login: str
    name: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class TenantInput:
    aps_id: str
    aps_type: str
    name: str | None
    account_id: str | None
    users_limit: int | None  # None or -1: unlimited
    admin: AdminInput | None


@dataclass(frozen=True, slots=True)
class TenantUpdate:
    name: str | None
    users_limit: int | None
    limit_given: bool  # USERS.limit present (null clears it) vs. absent (unchanged)


@dataclass(frozen=True, slots=True)
class UserInput:
    aps_id: str
    aps_type: str
    tenant_id: str
    login: str
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class UserUpdate:
    name: str | None
    email: str | None


@dataclass(frozen=True, slots=True)
class EventInput:
    event: str
    source_id: str
    source_type: str | None


def _document(raw: bytes, kind: str, *, empty_ok: bool = False) -> dict[str, Any]:
    if empty_ok and not raw.strip():
        return {}
    document = parse_json_object(raw)
    message = first_error_message(_VALIDATORS[kind], document, "")
    if message is not None:
        raise PayloadError(message)
    return document


def parse_app(raw: bytes, *, update: bool = False) -> AppInput:
    """:raise PayloadError: (400) not a JSON object with aps.id/aps.type (creation), or settings too big."""
    document = _document(raw, "app-update" if update else "app", empty_ok=update)
    aps = document.get("aps") or {}
    settings = {k: v for k, v in document.items() if k != "aps"}
    if len(json.dumps(settings)) > MAX_SETTINGS_BYTES:
        raise PayloadError(f"Malformed request: the settings exceed {MAX_SETTINGS_BYTES} bytes.")
    aps_id = aps.get("id")
    return AppInput(aps_id.lower() if aps_id else None, aps.get("type"), settings)


def parse_tenant(raw: bytes) -> TenantInput:
    """:raise PayloadError: (400)."""
    document = _document(raw, "tenant")
    admin = document.get("admin")
    account = document.get("account")
    return TenantInput(
        aps_id=document["aps"]["id"].lower(),
        aps_type=document["aps"]["type"],
        name=document.get("name"),
        account_id=account["aps"]["id"].lower() if account else None,
        users_limit=_limit(document.get("USERS")),
        admin=AdminInput(admin["login"], admin.get("name"), admin.get("email")) if admin else None,
    )


def parse_tenant_update(raw: bytes) -> TenantUpdate:
    """:raise PayloadError: (400)."""
    document = _document(raw, "tenant-update", empty_ok=True)
    users = document.get("USERS")
    return TenantUpdate(
        document.get("name"), _limit(users), limit_given=isinstance(users, dict) and "limit" in users
    )


def parse_user(raw: bytes) -> UserInput:
    """:raise PayloadError: (400)."""
    document = _document(raw, "user")
    login = document["login"]
    return UserInput(
        aps_id=document["aps"]["id"].lower(),
        aps_type=document["aps"]["type"],
        tenant_id=document["tenant"]["aps"]["id"].lower(),
        login=login,
        name=document.get("name") or login,
        email=document["email"],
    )


def parse_user_update(raw: bytes) -> UserUpdate:
    """:raise PayloadError: (400)."""
    document = _document(raw, "user-update", empty_ok=True)
    return UserUpdate(document.get("name"), document.get("email"))


def parse_event(raw: bytes) -> EventInput:
    """An event notification (aps.md §4): only ``event`` and ``source`` are read. :raise PayloadError:"""
    document = _document(raw, "event")
    source = document["source"]
    return EventInput(document["event"], source["id"].lower(), source.get("type"))


def parse_version(values: Sequence[bytes]) -> str:
    """The ``version`` query argument of the upgrade call, from the raw (percent-decoded) values.

    Raw on purpose: tornado's ``get_query_argument`` turns control characters into spaces and strips them,
    which would quietly accept ``1.0%0A`` as ``1.0``. :raise PayloadError: absent, repeated or malformed.
    """
    if len(values) != 1 or not _VERSION.fullmatch(values[0]):
        raise PayloadError(_VERSION_RULE, reason="upgrade without a usable version")
    return values[0].decode("ascii")


def _limit(resource: dict[str, Any] | None) -> int | None:
    if not resource:
        return None
    limit = resource.get("limit")
    return None if limit is None or limit < 0 else int(limit)
