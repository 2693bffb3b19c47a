"""CallbackDispatcher: ledger check, callback lookup, type and payload checks, then one transaction."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from endpoint.auth.identity import AuthenticatedUser
from endpoint.callbacks import ledger, users
from endpoint.callbacks.catalogue import CallbackSpec, CallContext, build_catalogue
from endpoint.callbacks.envelope import Envelope
from endpoint.callbacks.ledger import DuplicateRequest, LedgerEntry
from endpoint.callbacks.responses import CallbackResponse, success_envelope
from endpoint.errors import Conflict, PayloadError
from endpoint.parsing.schemas import first_error_message
from endpoint.work.executors import DatabaseRunner
from models import db as database

log = logging.getLogger(__name__)

_ATTEMPTS = 3  # a concurrent duplicate of a non-replayable callback re-runs; bounded, never a loop


class CallbackDispatcher:
    """Runs authenticated callbacks (acronis-callbacks.md §7 steps 6-8).

    Raises ServiceError subclasses (PayloadError 400, Forbidden 403, NotFound 404, Conflict 409); the web
    layer builds their bodies with error_envelope() and the request_id it parsed.
    """

    def __init__(
        self,
        app_code: str,
        db: DatabaseRunner,
        hash_password: Callable[[str], Awaitable[str]],
        mirroring_parent: str | None = None,
    ) -> None:
        self._catalogue = build_catalogue(app_code, mirroring_parent)
        self._db = db
        self._hash_password = hash_password

    def answer(self, principal: str, user: AuthenticatedUser, envelope: Envelope) -> CallbackResponse | None:
        """Steps 6-8 inside the caller's unit of work; None when the callback needs a new password hashed
        first (reset_password), which only ``dispatch`` can do.

        :raise PayloadError: unknown callback, wrong type, bad payload. :raise Forbidden, NotFound,
            Conflict: per callback; Conflict also when the request_id was used for another request.
        """
        spec = self._catalogue.get(envelope.callback_id)
        if spec is not None and spec.new_password:
            return None
        replay = _prior_answer(spec, principal, user.organization_id, envelope)
        if replay is not None:
            return replay
        checked = self._check(envelope, spec)
        call = _context(user, envelope)
        return _execute(checked, call, principal, envelope.request_id, _digest(checked, envelope))

    def needs_end_user(self, callback_id: str) -> bool:
        """False for the mirroring callbacks; an unknown id still authenticates first (§7: no enumeration)."""
        spec = self._catalogue.get(callback_id)
        return spec is None or spec.end_user

    def answer_for_tenant(self, principal: str, envelope: Envelope) -> CallbackResponse:
        """Steps 6-8 for a callback without an end user (mirroring): the acting party, and the ledger's
        organization, is the Acronis tenant ``context.tenant_id``. In the caller's unit of work.

        :raise: as ``answer``.
        """
        spec = self._catalogue.get(envelope.callback_id)
        tenant = envelope.tenant_id
        replay = _prior_answer(spec, principal, tenant, envelope)
        if replay is not None:
            return replay
        checked = self._check(envelope, spec)
        call = CallContext(tenant, None, tenant, envelope.datacenter_url, envelope.payload)
        return _execute(checked, call, principal, envelope.request_id, _digest(checked, envelope))

    async def dispatch(self, principal: str, user: AuthenticatedUser, envelope: Envelope) -> CallbackResponse:
        """Steps 6-8 in units of work of their own (after an argon2 verify, or for reset_password).

        :raise: as ``answer``.
        """
        spec = self._catalogue.get(envelope.callback_id)
        if spec is None or not spec.new_password:
            response = await self._db.run(self.answer, principal, user, envelope)
            assert response is not None  # only new-password callbacks decline
            return response
        # reset_password: argon2 must run between the checks and the transaction, on its own executor.
        digest = ledger.request_hash(envelope)
        org_id = user.organization_id
        replay = await self._db.run(_prior_answer, spec, principal, org_id, envelope)
        if replay is not None:
            return replay
        spec = self._check(envelope, spec)
        password = users.new_password()
        hashed = await self._hash_password(password)
        call = _context(user, envelope, password=password, password_hash=hashed)
        return await self._db.run(_execute, spec, call, principal, envelope.request_id, digest)

    def _check(self, envelope: Envelope, spec: CallbackSpec | None) -> CallbackSpec:
        """Step 7: known callback, matching type, valid payload, data center where one is used."""
        if spec is None:
            raise PayloadError("Malformed request: unknown callback_id.")
        if envelope.type != spec.request_type:
            raise PayloadError("Malformed request: type does not match the callback.")
        message = first_error_message(spec.payload_schema, envelope.payload, "payload")
        if message is not None:
            raise PayloadError(message)
        if spec.payload_rules is not None:
            spec.payload_rules(envelope.payload)
        if spec.needs_datacenter and envelope.datacenter_url is None:
            raise PayloadError("Malformed request: context.datacenter_url is required for this callback.")
        return spec


def _context(
    user: AuthenticatedUser,
    envelope: Envelope,
    *,
    password: str | None = None,
    password_hash: str | None = None,
) -> CallContext:
    return CallContext(
        user.organization_id,
        user.organization_kind,
        envelope.tenant_id,
        envelope.datacenter_url,
        envelope.payload,
        password=password,
        password_hash=password_hash,
    )


def _digest(spec: CallbackSpec, envelope: Envelope) -> str:
    """The request's hash for the ledger; only writes store one (reads would hash for nothing)."""
    return ledger.request_hash(envelope) if spec.writes else ""


def _prior_answer(
    spec: CallbackSpec | None, principal: str, org_id: str, envelope: Envelope
) -> CallbackResponse | None:
    """Step 6, in a unit of work: the stored answer of a repeat, if any.

    :raise Conflict: the request_id was recorded for another callback or payload.
    """
    prior = ledger.lookup(principal, org_id, envelope.request_id)
    return None if prior is None else _replay(prior, envelope, ledger.request_hash(envelope), spec)


def _replay(
    prior: LedgerEntry, envelope: Envelope, digest: str, spec: CallbackSpec | None
) -> CallbackResponse | None:
    """The stored answer for a repeat; None when a repeat must run again (reset_password).

    :raise Conflict: the request_id was recorded for another callback or payload.
    """
    if not prior.same_request(envelope.callback_id, digest):
        log.info("request_id reused for a different request: callback=%s", envelope.callback_id)
        raise Conflict(
            ledger.REUSED_MESSAGE, reason="ledger: request_id reused with another callback or payload"
        )
    if spec is not None and not spec.replayable:
        return None
    log.info("ledger replay: callback=%s", envelope.callback_id)
    return CallbackResponse(prior.status, prior.body)


def _execute(
    spec: CallbackSpec, call: CallContext, principal: str, request_id: str, digest: str
) -> CallbackResponse:
    """Step 8, in the database thread: authorization, effect and (for writes) the ledger entry, in one
    transaction."""
    if not spec.writes:
        # Reads need no transaction: on SQLite one would be BEGIN IMMEDIATE, serializing every reader
        # behind the single write lock.
        return CallbackResponse(200, success_envelope(request_id, spec.response_type, spec.service(call)))
    for _ in range(_ATTEMPTS):
        try:
            with database.atomic():
                prior = ledger.claim(principal, call.organization_id, request_id, spec.callback_id, digest)
                if prior is not None:
                    # Recorded meanwhile (after our step-6 lookup): answer as a repeat would be.
                    if not prior.same_request(spec.callback_id, digest):
                        raise Conflict(ledger.REUSED_MESSAGE, reason="ledger: request_id reused")
                    if spec.replayable:
                        return CallbackResponse(prior.status, prior.body)
                result = spec.service(call)
                body = success_envelope(request_id, spec.response_type, result)
                if prior is None:
                    ledger.store(principal, call.organization_id, request_id, 200, _stored_body(spec, body))
                return CallbackResponse(200, body)
        except DuplicateRequest:
            # A concurrent duplicate committed first; our transaction rolled back. Answer from its entry.
            entry = ledger.lookup(principal, call.organization_id, request_id)
            if entry is None:
                continue
            if not entry.same_request(spec.callback_id, digest):
                raise Conflict(
                    ledger.REUSED_MESSAGE, reason="ledger: request_id reused (concurrent)"
                ) from None
            if spec.replayable:
                return CallbackResponse(entry.status, entry.body)
    raise RuntimeError("request ledger: no stable answer after concurrent duplicates")


def _stored_body(spec: CallbackSpec, body: dict[str, Any]) -> dict[str, Any]:
    """What the ledger keeps: the body as sent, except that a new password is never stored (§13 point 12)."""
    if spec.replayable:
        return body
    return {key: value for key, value in body.items() if key != "payload"}
