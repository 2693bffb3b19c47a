"""Acronis API simulator state: API clients, issued tokens, injected faults, validation, the record."""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from simulators.keyring import KeyRing

_NS = r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+\.v\d+\.\d+"
# Whole-string patterns: always used with fullmatch ("$" with match would accept a trailing newline).
ALERT_TYPE = re.compile(rf"cti\.a\.p\.am\.alert\.v1\.0~a\.p\.basic\.v1\.0~{_NS}")
ALERT_CATEGORY = re.compile(rf"cti\.a\.p\.am\.category\.v1\.0~{_NS}")
WORKLOAD_TYPE = re.compile(rf"cti\.a\.p\.wm\.workload\.v1\.0~a\.p\.wm\.aspect\.v1\.0~{_NS}")
ANY_CTI = re.compile(rf"cti\.{_NS}(?:~{_NS})*")
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
ALERT_KEYS = {"type", "category", "details", "tenantID", "ResourceID", "ResourceName"}
WORKLOAD_KEYS = {"type", "name", "attributes", "enabled", "tenant_id", "client_id", "allowed_actions"}
ENDPOINTS = ("token", "alerts", "workloads", "jwks", "*")


@dataclass
class Fault:
    """One injected answer: ``status`` (optional Retry-After/body), or only a ``delay`` before answering."""

    endpoint: str = "*"
    status: int = 503
    count: int = 1  # how many matching requests it answers; -1: forever
    retry_after: str | None = None
    delay: float = 0.0
    body: str = ""
    match: str = ""  # only requests whose raw body contains this text

    def __post_init__(self) -> None:
        if self.endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {', '.join(ENDPOINTS)}")
        if not (self.status == 0 or 100 <= self.status <= 599):
            raise ValueError("status must be 0 (delay only) or an HTTP status")


@dataclass
class Token:
    client_id: str
    expires_on: int


@dataclass
class SimulatorState:
    """Everything the simulator knows; handlers call it from the IOLoop, tests read it from any thread."""

    clients: dict[str, str]
    token_ttl: int = 7200
    record_path: str | None = None
    clock: Callable[[], float] = time.time
    tokens: dict[str, Token] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    workloads: list[dict[str, Any]] = field(default_factory=list)
    workload_batches: int = 0
    tokens_issued: int = 0
    keyring: KeyRing = field(default_factory=KeyRing)  # the identity provider's JWKS keys; reset keeps them
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reset(self) -> None:
        with self.lock:
            self.tokens.clear()
            self.faults.clear()
            self.requests.clear()
            self.alerts.clear()
            self.workloads.clear()
            self.workload_batches = self.tokens_issued = 0

    def add_faults(self, specs: list[dict[str, Any]]) -> None:
        """:raise ValueError: on an unknown key or a bad value."""
        faults = [Fault(**spec) for spec in specs]
        with self.lock:
            self.faults.extend(faults)

    def clear_faults(self, endpoint: str | None = None) -> int:
        """Drop every fault, or only those of one endpoint; returns how many went."""
        with self.lock:
            kept = [f for f in self.faults if endpoint is not None and f.endpoint != endpoint]
            dropped = len(self.faults) - len(kept)
            self.faults[:] = kept
            return dropped

    def take_fault(self, endpoint: str, body: bytes) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.endpoint not in (endpoint, "*") or fault.match.encode() not in body:
                    continue
                if fault.count > 0:
                    fault.count -= 1
                    if fault.count == 0:
                        self.faults.remove(fault)
                return fault
        return None

    def expire_tokens(self) -> int:
        with self.lock:
            for token in self.tokens.values():
                token.expires_on = 0
            return len(self.tokens)

    def issue_token(self, authorization: str, form: dict[str, list[bytes]]) -> tuple[int, dict[str, Any]]:
        """Client credentials grant with HTTP Basic (id/secret form-urlencoded first, RFC 6749 App. B)."""
        client_id = self._basic_client(authorization)
        if client_id is None:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != [b"client_credentials"]:
            return 400, {"error": "unsupported_grant_type"}
        access = secrets.token_urlsafe(24)
        expires_on = int(self.clock()) + self.token_ttl
        with self.lock:
            self.tokens[access] = Token(client_id, expires_on)
            self.tokens_issued += 1
        return 200, {
            "access_token": access,
            "expires_on": expires_on,
            "id_token": secrets.token_urlsafe(8),
            "token_type": "bearer",
        }

    def bearer_client(self, authorization: str) -> str | None:
        scheme, _, value = authorization.partition(" ")
        with self.lock:
            token = self.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
            if token is None or token.expires_on <= self.clock():
                return None
            return token.client_id

    def _basic_client(self, authorization: str) -> str | None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            raw = base64.b64decode(value.strip(), validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = raw.partition(":")
        client_id, secret = unquote_plus(user), unquote_plus(password)
        expected = self.clients.get(client_id)
        if not sep or expected is None or not secrets.compare_digest(expected.encode(), secret.encode()):
            return None
        return client_id

    def accept_alert(self, alert: dict[str, Any]) -> str:
        alert_id = str(uuid.uuid4())
        with self.lock:
            self.alerts.append({"id": alert_id, **alert})
        return alert_id

    def accept_workloads(self, items: list[dict[str, Any]]) -> None:
        with self.lock:
            self.workloads.extend(items)
            self.workload_batches += 1

    def log_request(self, entry: dict[str, Any]) -> None:
        entry["time"] = self.clock()
        with self.lock:
            self.requests.append(entry)
            if self.record_path:
                with open(self.record_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry) + "\n")

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "tokens_issued": self.tokens_issued,
                "workload_batches": self.workload_batches,
                "alerts": list(self.alerts),
                "workloads": list(self.workloads),
                "requests": list(self.requests),
                "faults": [asdict(f) for f in self.faults],
            }


def alert_errors(body: Any) -> list[str]:
    """Schema problems of an alert (§3): required fields, CTI shapes, the ``tenantID`` casing."""
    if not isinstance(body, dict):
        return ["body must be a JSON object"]
    errors = [f"unknown field {k!r}" for k in sorted(set(body) - ALERT_KEYS)]
    errors += [f"missing field {k!r}" for k in ("type", "category", "details", "tenantID") if k not in body]
    if "type" in body and not (isinstance(body["type"], str) and ALERT_TYPE.fullmatch(body["type"])):
        errors.append("type: not an alert CTI")
    if "category" in body and not (
        isinstance(body["category"], str) and ALERT_CATEGORY.fullmatch(body["category"])
    ):
        errors.append("category: not an alert category CTI")
    if "tenantID" in body and not (isinstance(body["tenantID"], str) and UUID.fullmatch(body["tenantID"])):
        errors.append("tenantID: not a UUID")
    for key in ("ResourceID", "ResourceName"):
        if key in body and not isinstance(body[key], str):
            errors.append(f"{key}: must be a string")
    details = body.get("details")
    if "details" in body and not isinstance(details, dict):
        errors.append("details: must be an object")
    elif isinstance(details, dict):
        errors += [
            f"details.{k}: required string"
            for k in ("title", "category", "description")
            if not isinstance(details.get(k), str) or not details.get(k)
        ]
        fields = details.get("fields", {})
        if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
            errors.append("details.fields: must be a flat object of strings")
    return errors


def workload_errors(body: Any, client_id: str, max_items: int) -> list[str]:
    """Schema problems of a workloads batch (§4), including ``client_id`` = the token's client."""
    if not isinstance(body, dict) or set(body) != {"items"} or not isinstance(body["items"], list):
        return ['body must be {"items": [...]}']
    items = body["items"]
    if not 1 <= len(items) <= max_items:
        return [f"items: 1..{max_items} workloads per request"]
    errors: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(f"items[{i}]: must be an object")
            continue
        errors += [f"items[{i}]: unknown field {k!r}" for k in sorted(set(item) - WORKLOAD_KEYS)]
        errors += [f"items[{i}]: missing field {k!r}" for k in sorted(WORKLOAD_KEYS - set(item))]
        if "type" in item and not (isinstance(item["type"], str) and WORKLOAD_TYPE.fullmatch(item["type"])):
            errors.append(f"items[{i}].type: not a workload CTI")
        if "name" in item and not (isinstance(item["name"], str) and item["name"]):
            errors.append(f"items[{i}].name: required string")
        if "attributes" in item and not isinstance(item["attributes"], dict):
            errors.append(f"items[{i}].attributes: must be an object")
        if "enabled" in item and not isinstance(item["enabled"], bool):
            errors.append(f"items[{i}].enabled: must be a boolean")
        if "tenant_id" in item and not (
            isinstance(item["tenant_id"], str) and UUID.fullmatch(item["tenant_id"])
        ):
            errors.append(f"items[{i}].tenant_id: not a UUID")
        if "client_id" in item and item["client_id"] != client_id:
            errors.append(f"items[{i}].client_id: must be the API client that holds the token")
        actions = item.get("allowed_actions", [])
        if not isinstance(actions, list) or not all(
            isinstance(a, str) and ANY_CTI.fullmatch(a) for a in actions
        ):
            errors.append(f"items[{i}].allowed_actions: must be a list of CTIs")
    return errors
