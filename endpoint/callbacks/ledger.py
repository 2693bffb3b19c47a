"""The request ledger: answers keyed (principal, ORG, request_id), so a retry never re-runs an effect."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import peewee as pw

from endpoint.callbacks.envelope import Envelope
from models import RequestLedger, db
from models.prepared import PreparedQuery

log = logging.getLogger(__name__)

REUSED_MESSAGE = "This request_id was already used for a different request."
_PENDING = 0  # status of a claimed row until its transaction stores the answer; never visible outside it


class DuplicateRequest(Exception):
    """A concurrent transaction recorded the same (principal, ORG, request_id) first; ours must roll back."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    callback_id: str
    payload_hash: str
    status: int
    body: dict[str, Any]

    def same_request(self, callback_id: str, payload_hash: str) -> bool:
        return self.callback_id == callback_id and self.payload_hash == payload_hash


def request_hash(envelope: Envelope) -> str:
    """SHA-256 over callback id, request type, the context a callback acts on, and the canonical payload.

    Tenant and data center are included because the user and mapping callbacks act on them: the same
    request_id and payload sent for another tenant is a different request, never a repeat.
    """
    canonical = json.dumps(envelope.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    parts = (
        envelope.callback_id,
        envelope.type,
        envelope.tenant_id,
        envelope.datacenter_url or "",
        canonical,
    )
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def _key(principal: str, org_id: str, request_id: str) -> pw.Expression:
    return (
        (RequestLedger.principal == principal)
        & (RequestLedger.organization_id == org_id)
        & (RequestLedger.request_id == request_id)
    )


def lookup(principal: str, org_id: str, request_id: str) -> LedgerEntry | None:
    """The stored entry for this key, or None (served by the unique index on the key)."""
    row = _LOOKUP.one(principal=principal, org_id=org_id, request_id=request_id)
    if row is None or row[2] == _PENDING:
        return None
    return LedgerEntry(row[0], row[1], row[2], json.loads(row[3]))


# Every callback looks its request up first: rendered once (models/prepared.py).
_LOOKUP = PreparedQuery(
    lambda principal, org_id, request_id: RequestLedger.select(
        RequestLedger.callback_id,
        RequestLedger.payload_hash,
        RequestLedger.status,
        RequestLedger.response_body,
    ).where(
        (RequestLedger.principal == principal)
        & (RequestLedger.organization_id == org_id)
        & (RequestLedger.request_id == request_id)
    ),
    principal=str,
    org_id=str,
    request_id=str,
)


def claim(
    principal: str, org_id: str, request_id: str, callback_id: str, payload_hash: str
) -> LedgerEntry | None:
    """Inside the caller's transaction: the existing entry, or None after reserving the key for this request.

    The reservation is an INSERT against the unique index, made before the effect: a concurrent duplicate
    waits on it (PostgreSQL, MySQL) or is serialized by BEGIN IMMEDIATE (SQLite); both never run the effect.
    :raise DuplicateRequest: another transaction committed the same key first; roll back and look it up again.
    """
    existing = lookup(principal, org_id, request_id)
    if existing is not None:
        return existing
    try:
        with db.atomic():
            RequestLedger.create(
                principal=principal,
                organization_id=org_id,
                request_id=request_id,
                callback_id=callback_id,
                payload_hash=payload_hash,
                status=_PENDING,
                response_body="",
            )
    except pw.IntegrityError as e:
        raise DuplicateRequest from e
    return None


def store(principal: str, org_id: str, request_id: str, status: int, body: dict[str, Any]) -> None:
    """Fill in the answer of a claimed key, in the same transaction as the effect."""
    (
        RequestLedger.update(status=status, response_body=json.dumps(body, separators=(",", ":")))
        .where(_key(principal, org_id, request_id))
        .execute()
    )


def purge(older_than: dt.datetime) -> int:
    """Delete entries created before ``older_than`` (naive UTC, like utcnow()); returns how many went."""
    deleted = RequestLedger.delete().where(RequestLedger.created_at < older_than).execute()
    log.debug("request ledger purged: %d entries", deleted)
    return int(deleted)
