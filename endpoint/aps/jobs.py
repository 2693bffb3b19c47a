"""Durable async jobs (aps.md §4.2): submit, claim by lease, complete, retry, and the answer to a poll.

Every function is synchronous database work. A job is keyed by (aps.id, operation); its state survives a
restart, a running job whose runner died is claimed again once its lease has passed, and a poll reports
the stored state (never a 200 that did not happen).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import peewee as pw

from endpoint.aps.context import Outcome, dumps, loads_object
from endpoint.aps.settings import ApsSettings
from models import ApsInstance, ApsJob, Consumer, db
from models.aps import DONE, FAILED, PENDING, RUNNING
from models.db import utcnow
from proxy.transport import backoff_delay

log = logging.getLogger(__name__)

ERROR_LIMIT = 500


@dataclass(frozen=True, slots=True)
class JobView:
    id: int
    aps_id: str
    operation: str
    state: str
    attempts: int
    error: str | None
    result_status: int | None
    result: dict[str, Any] | None
    fresh: bool = False  # created or re-armed by this submission


@dataclass(frozen=True, slots=True)
class Ticket:
    """A claimed job: what its runner needs, including the instance's controller credentials."""

    id: int
    aps_id: str
    operation: str
    instance_id: str
    generation: int
    attempt: int
    payload: dict[str, Any]
    transaction_id: str | None
    controller_uri: str
    consumer_key: str
    secret: str | None = field(repr=False)  # None: the instance has no active secret left

    @property
    def log_extra(self) -> dict[str, Any]:
        return {"fields": {"transaction": self.transaction_id, "job": self.id, "op": self.operation}}


def _view(job: ApsJob, fresh: bool = False) -> JobView:
    result = json.loads(job.result) if job.result else None
    return JobView(
        job.id,
        job.aps_id,
        job.operation,
        job.state,
        job.attempts,
        job.error,
        job.result_status,
        result,
        fresh,
    )


def submit(
    instance_id: str, aps_id: str, operation: str, payload: dict[str, Any], transaction_id: str | None
) -> JobView:
    """Start (or re-arm) the job of a new request. A request repeated while its job is in flight changes
    nothing and sees the job as it is; after the job finished, a new request starts a new generation.
    Jobs are keyed by instance: another instance's request about the same aps.id has a job of its own.
    """
    with db.atomic():
        job, created = _get_or_create(instance_id, aps_id, operation, payload, transaction_id)
        if created:
            return _view(job, fresh=True)
        if job.state in (PENDING, RUNNING):
            return _view(job)
        rearm(job.id, instance_id, payload, transaction_id)
        return _view(ApsJob.get_by_id(job.id), fresh=True)


def _get_or_create(
    instance_id: str, aps_id: str, operation: str, payload: dict[str, Any], transaction_id: str | None
) -> tuple[ApsJob, bool]:
    """The job row, inserted when absent; a concurrent insert (unique index) means it exists now."""
    key = (ApsJob.instance_id == instance_id) & (ApsJob.aps_id == aps_id) & (ApsJob.operation == operation)
    job = ApsJob.get_or_none(key)
    if job is not None:
        return job, False
    now = utcnow()
    try:
        with db.atomic():
            row = ApsJob.create(
                aps_id=aps_id,
                operation=operation,
                instance_id=instance_id,
                payload=dumps(payload),
                transaction_id=transaction_id,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            return row, True
    except pw.IntegrityError:
        return ApsJob.get(key), False


def rearm(job_id: int, instance_id: str, payload: dict[str, Any], transaction_id: str | None) -> None:
    """A new generation with fresh input, due now. Each UPDATE is conditional on the state it expects, so a
    runner finishing or claiming in between never leaves the job stuck: a running job keeps running and
    its runner hands the new generation back as pending (see _finish)."""
    now = utcnow()
    fields: dict[str, Any] = dict(
        generation=ApsJob.generation + 1,
        instance_id=instance_id,
        payload=dumps(payload),
        transaction_id=transaction_id,
        result_status=None,
        result=None,
        error=None,
        next_attempt_at=now,
        updated_at=now,
    )
    for _ in range(3):
        if ApsJob.update(**fields).where((ApsJob.id == job_id) & (ApsJob.state == RUNNING)).execute():
            return
        idle = (ApsJob.id == job_id) & (ApsJob.state != RUNNING)
        if ApsJob.update(state=PENDING, attempts=0, **fields).where(idle).execute():
            return


def touch(instance_id: str, aps_id: str, operation: str, payload: dict[str, Any], tx: str | None) -> None:
    """Make sure the job runs (again) soon, whatever its state: coalescing background work (usage)."""
    with db.atomic():
        job, created = _get_or_create(instance_id, aps_id, operation, payload, tx)
        if not created:
            rearm(job.id, instance_id, payload, tx)


def lookup(instance_id: str, aps_id: str, operation: str) -> JobView | None:
    key = (ApsJob.instance_id == instance_id) & (ApsJob.aps_id == aps_id) & (ApsJob.operation == operation)
    job = ApsJob.get_or_none(key)
    return _view(job) if job is not None else None


def view(job_id: int) -> JobView | None:
    job = ApsJob.get_or_none(ApsJob.id == job_id)
    return _view(job) if job is not None else None


def due_ids(now: dt.datetime, limit: int) -> list[int]:
    """Pending jobs that are due, then running jobs whose lease ran out (their runner died)."""
    pending = (
        ApsJob.select(ApsJob.id)
        .where((ApsJob.state == PENDING) & (ApsJob.next_attempt_at <= now))
        .order_by(ApsJob.next_attempt_at)
        .limit(limit)
    )
    orphaned = (
        ApsJob.select(ApsJob.id).where((ApsJob.state == RUNNING) & (ApsJob.lease_until < now)).limit(limit)
    )
    return [row.id for row in pending] + [row.id for row in orphaned]


def claim(job_id: int, lease: float) -> Ticket | None:
    """Take a due job (or an orphaned one) with one conditional UPDATE; None when someone else has it."""
    now = utcnow()
    with db.atomic():
        taken = (
            ApsJob.update(
                state=RUNNING,
                attempts=ApsJob.attempts + 1,
                lease_until=now + dt.timedelta(seconds=lease),
                updated_at=now,
            )
            .where(
                (ApsJob.id == job_id)
                & (
                    ((ApsJob.state == PENDING) & (ApsJob.next_attempt_at <= now))
                    | ((ApsJob.state == RUNNING) & (ApsJob.lease_until < now))
                )
            )
            .execute()
        )
        if not taken:
            return None
        job = ApsJob.get_by_id(job_id)
        instance = ApsInstance.get_or_none(ApsInstance.instance_id == job.instance_id)
    secret = signing_secret(instance) if instance is not None else None
    return Ticket(
        job.id,
        job.aps_id,
        job.operation,
        job.instance_id,
        job.generation,
        job.attempts,
        loads_object(job.payload),
        job.transaction_id,
        instance.controller_uri if instance is not None else "",
        instance.consumer_key if instance is not None else "",
        secret,
    )


def signing_secret(instance: ApsInstance) -> str | None:
    """The secret the controller last signed with while it is active, else the newest active one."""
    secrets = Consumer.active_secrets(instance.consumer_key, utcnow())
    preferred = [secret for sid, secret in secrets if sid == instance.secret_id]
    return (preferred or [secret for _, secret in secrets] or [None])[0]


def _finish(ticket: Ticket, **fields: Any) -> bool:
    """Apply ``fields`` if the job still runs the claimed generation; else hand it back as pending."""
    now = utcnow()
    updated = (
        ApsJob.update(lease_until=None, updated_at=now, **fields)
        .where(
            (ApsJob.id == ticket.id) & (ApsJob.generation == ticket.generation) & (ApsJob.state == RUNNING)
        )
        .execute()
    )
    if not updated:  # re-armed meanwhile: run the new generation next
        ApsJob.update(state=PENDING, lease_until=None, next_attempt_at=now, updated_at=now).where(
            (ApsJob.id == ticket.id) & (ApsJob.state == RUNNING)
        ).execute()
    return bool(updated)


def complete(ticket: Ticket, outcome: Outcome) -> bool:
    """Record the final answer; call inside the transaction that applied the effect."""
    body = dumps(outcome.body) if outcome.body is not None else None
    return _finish(ticket, state=DONE, result_status=outcome.status, result=body, error=None)


def fail(ticket: Ticket, message: str) -> bool:
    """A terminal failure: polls get 500 + APS-Transient-Error: false with ``message``."""
    return _finish(ticket, state=FAILED, error=message[:ERROR_LIMIT])


def retry_later(ticket: Ticket, message: str, settings: ApsSettings, rng: Callable[[], float]) -> bool:
    """A transient failure: pending again after a jittered backoff, or failed after the last attempt."""
    if ticket.attempt >= settings.job_max_attempts:
        return fail(ticket, f"Gave up after {ticket.attempt} attempts: {message}")
    delay = backoff_delay(ticket.attempt, settings.job_backoff_base, settings.job_backoff_max, rng=rng)
    return _finish(
        ticket,
        state=PENDING,
        error=message[:ERROR_LIMIT],
        next_attempt_at=utcnow() + dt.timedelta(seconds=delay),
    )


def purge(before: dt.datetime) -> int:
    """Forget finished jobs older than the retention (a later poll then re-runs the idempotent request)."""
    return ApsJob.delete().where(ApsJob.state.in_((DONE, FAILED)) & (ApsJob.updated_at < before)).execute()


def answer(view: JobView, settings: ApsSettings, rng: random.Random | None = None) -> Outcome:
    """The HTTP answer to a request or a poll for this job (aps.md §4.2)."""
    if view.state == DONE:
        return Outcome(view.result_status or 200, view.result)
    if view.state == FAILED:
        body = {"code": 500, "error": "OperationFailed", "message": view.error or "The operation failed."}
        return Outcome(500, body, {"APS-Transient-Error": "false"})
    pick = (rng or random).randint(settings.retry_timeout_min, settings.retry_timeout_max)
    if view.error:
        info = f"Attempt {view.attempts} failed, retrying: {view.error}"
    elif view.state == RUNNING:
        info = f"In progress (attempt {view.attempts})."
    else:
        info = "Queued."
    return Outcome(202, None, {"APS-Retry-Timeout": str(pick), "APS-Info": _header_text(info)})


def _header_text(text: str) -> str:
    """Printable ASCII on one line, bounded: header values must not carry CR/LF or non-Latin-1."""
    return "".join(c if 0x20 <= ord(c) < 0x7F else "?" for c in text)[:300]
