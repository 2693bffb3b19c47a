"""Durable jobs: one per (aps.id, operation), claimed once, resumed after a lease, answered truthfully."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from endpoint.aps import jobs
from endpoint.aps.context import Outcome
from models import ApsJob
from models.aps import DONE, FAILED, PENDING, RUNNING
from models.db import utcnow
from tests.support.aps_builders import INSTANCE_ID, Bound, aps_settings

RESOURCE = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
OP = "tenants.provision"


def submit(payload: dict[str, object] | None = None, instance: str = INSTANCE_ID) -> jobs.JobView:
    return jobs.submit(instance, RESOURCE, OP, payload or {"n": 1}, "tx-1")


def test_submit_creates_once_and_repeats_see_the_job_in_flight(bound: Bound) -> None:
    first = submit()
    assert first.fresh and first.state == PENDING
    again = submit({"n": 2})
    assert not again.fresh and again.id == first.id
    assert ApsJob.select().count() == 1


def test_jobs_are_keyed_by_instance(bound: Bound) -> None:
    """Another instance's request about the same aps.id never sees, holds or blocks this one's job."""
    mine = submit()
    other = "9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f"
    theirs = submit(instance=other)
    assert theirs.id != mine.id and theirs.fresh
    assert jobs.lookup(bound.instance.instance_id, RESOURCE, OP).id == mine.id  # type: ignore[union-attr]
    assert jobs.lookup(other, RESOURCE, OP).id == theirs.id  # type: ignore[union-attr]


def test_claim_is_exclusive_and_carries_the_signing_secret(bound: Bound) -> None:
    view = submit()
    ticket = jobs.claim(view.id, lease=60)
    assert ticket is not None and ticket.attempt == 1 and ticket.secret is not None
    assert "secret" not in repr(ticket)
    assert jobs.claim(view.id, lease=60) is None
    assert jobs.due_ids(utcnow(), 10) == []


def test_an_orphaned_running_job_is_claimed_again_after_its_lease(bound: Bound) -> None:
    view = submit()
    assert jobs.claim(view.id, lease=60) is not None
    ApsJob.update(lease_until=utcnow() - dt.timedelta(seconds=1)).execute()  # its runner died
    assert jobs.due_ids(utcnow(), 10) == [view.id]
    ticket = jobs.claim(view.id, lease=60)
    assert ticket is not None and ticket.attempt == 2


def test_complete_records_the_answer(bound: Bound) -> None:
    view = submit()
    ticket = jobs.claim(view.id, lease=60)
    assert ticket is not None and jobs.complete(ticket, Outcome(201, {"ok": True}))
    done = jobs.lookup(INSTANCE_ID, RESOURCE, OP)
    assert done is not None and (done.state, done.result_status, done.result) == (DONE, 201, {"ok": True})
    assert jobs.answer(done, aps_settings()) == Outcome(201, {"ok": True})
    rearmed = submit()  # a new request after the job finished: a new generation
    assert rearmed.fresh and rearmed.state == PENDING and rearmed.result is None


def test_a_request_that_arrives_mid_run_is_not_lost(bound: Bound) -> None:
    view = submit()
    ticket = jobs.claim(view.id, lease=60)
    assert ticket is not None
    jobs.touch(INSTANCE_ID, RESOURCE, OP, {"n": 9}, "tx-2")  # re-armed while running
    assert not jobs.complete(ticket, Outcome(200))
    job = ApsJob.get_by_id(view.id)
    assert job.state == PENDING and job.payload == '{"n":9}'


def test_transient_failures_back_off_then_fail_for_good(bound: Bound) -> None:
    settings = aps_settings(job_max_attempts=2, job_backoff_base=10, job_backoff_max=10)
    view = submit()
    ticket = jobs.claim(view.id, lease=60)
    assert ticket is not None
    jobs.retry_later(ticket, "The controller answered 503.", settings, random.random)
    job = ApsJob.get_by_id(view.id)
    assert job.state == PENDING and job.next_attempt_at > utcnow() + dt.timedelta(seconds=4)
    pending = jobs.answer(jobs.lookup(INSTANCE_ID, RESOURCE, OP), settings)  # type: ignore[arg-type]
    assert pending.status == 202 and pending.headers["APS-Retry-Timeout"] == "1"
    assert pending.headers["APS-Info"] == "Attempt 1 failed, retrying: The controller answered 503."
    ApsJob.update(next_attempt_at=utcnow()).execute()
    ticket = jobs.claim(view.id, lease=60)
    assert ticket is not None
    jobs.retry_later(ticket, "The controller answered 503.", settings, random.random)
    failed = jobs.lookup(INSTANCE_ID, RESOURCE, OP)
    assert failed is not None and failed.state == FAILED
    outcome = jobs.answer(failed, settings)
    assert outcome.status == 500 and outcome.headers == {"APS-Transient-Error": "false"}
    assert outcome.body is not None and outcome.body["message"].startswith("Gave up after 2 attempts")


def test_answers_while_queued_or_running(bound: Bound) -> None:
    settings = aps_settings(retry_timeout_min=60, retry_timeout_max=119)
    view = submit()
    queued = jobs.answer(view, settings, random.Random(1))
    assert queued.status == 202 and 60 <= int(queued.headers["APS-Retry-Timeout"]) <= 119
    assert queued.headers["APS-Info"] == "Queued."
    jobs.claim(view.id, lease=60)
    running = jobs.lookup(INSTANCE_ID, RESOURCE, OP)
    assert running is not None and running.state == RUNNING
    assert jobs.answer(running, settings).headers["APS-Info"] == "In progress (attempt 1)."


def test_info_headers_are_single_line_ascii(bound: Bound) -> None:
    view = submit()
    ticket = jobs.claim(view.id, lease=60)
    assert ticket is not None
    jobs.retry_later(ticket, "bad\r\nX-Injected: 1 é", aps_settings(), random.random)
    info = jobs.answer(jobs.lookup(INSTANCE_ID, RESOURCE, OP), aps_settings()).headers["APS-Info"]  # type: ignore[arg-type]
    assert "\r" not in info and "\n" not in info and info.isascii()


def test_purge_forgets_only_old_finished_jobs(bound: Bound) -> None:
    view = submit()
    ticket = jobs.claim(view.id, lease=60)
    assert ticket is not None
    jobs.fail(ticket, "no")
    jobs.submit(INSTANCE_ID, "11111111-2222-4333-8444-555555555555", OP, {}, None)
    assert jobs.purge(utcnow() - dt.timedelta(hours=1)) == 0
    assert jobs.purge(utcnow() + dt.timedelta(seconds=1)) == 1
    assert [job.state for job in ApsJob.select()] == [PENDING]


def test_a_concurrent_insert_is_found_not_duplicated(bound: Bound, monkeypatch: pytest.MonkeyPatch) -> None:
    first = submit()
    monkeypatch.setattr(ApsJob, "get_or_none", lambda *args, **kwargs: None)  # both requests saw no job
    again = submit()
    assert again.id == first.id and not again.fresh
    assert ApsJob.select().count() == 1


def test_rearming_a_job_that_just_finished_leaves_it_pending_not_stuck(bound: Bound) -> None:
    view = submit()
    ticket = jobs.claim(view.id, lease=60)
    assert ticket is not None and jobs.complete(ticket, Outcome(200))
    jobs.rearm(view.id, INSTANCE_ID, {"n": 2}, "tx-2")  # decided on a stale "running" read
    job = ApsJob.get_by_id(view.id)
    assert (job.state, job.generation, job.attempts) == (PENDING, 2, 0)
    assert jobs.due_ids(utcnow(), 10) == [view.id]
