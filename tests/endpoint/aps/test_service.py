"""ApsService: the async provisioning protocol (aps.md §4.2) as the handlers see it."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from endpoint.aps import jobs
from endpoint.aps.context import Outcome
from endpoint.aps.operations import tenant_payload
from endpoint.aps.payloads import AdminInput, EventInput, TenantInput
from endpoint.aps.service import ApsService
from endpoint.aps.users import USAGE_SYNC
from endpoint.errors import Conflict
from endpoint.work.executors import DatabaseRunner
from models import ApsJob, ApsResource
from models.aps import DONE
from models.db import DatabaseSettings
from tests.support.aps_builders import TENANT_TYPE, Bound, StubController, aps_settings
from tests.support.builders import create_user, make_settings

ACCOUNT = "a0000000-0000-4000-8000-000000000001"
PROVISION = "tenants.provision"


@pytest.fixture
def runner() -> Iterator[DatabaseRunner]:
    db = DatabaseRunner(2)
    yield db
    db.shutdown()


def service(
    db_settings: DatabaseSettings, runner: DatabaseRunner, stub: StubController, **aps: Any
) -> ApsService:
    settings = make_settings(database=db_settings, aps=aps_settings(**aps))
    return ApsService(settings, runner, {}, session=stub.session)


def payload(aps_id: str, name: str | None = None, admin: str | None = None) -> dict[str, Any]:
    admin_input = AdminInput(admin) if admin else None
    return tenant_payload(TenantInput(aps_id, TENANT_TYPE, name, ACCOUNT, None, admin_input))


def provision(svc: ApsService, bound: Bound, aps_id: str, phase: str = "sync", **kw: Any) -> Outcome:
    return asyncio.run(svc.tenant_job(bound.ctx(phase), PROVISION, aps_id, payload(aps_id, **kw)))


def test_sync_provision_answers_201_then_200_for_the_same_resource(
    bound: Bound, db_settings: DatabaseSettings, runner: DatabaseRunner
) -> None:
    svc = service(db_settings, runner, StubController(resources={ACCOUNT: {"companyName": "Acme"}}))
    try:
        aps_id = str(uuid.uuid4())
        first = provision(svc, bound, aps_id)
        assert first.status == 201 and first.body is not None and first.body["name"] == "Acme"
        again = provision(svc, bound, aps_id)
        assert again.status == 200 and again.body == first.body
        assert ApsResource.select().count() == 1
    finally:
        svc.close()


def test_a_sync_request_waits_for_its_job_when_another_runner_took_it_first(
    bound: Bound, db_settings: DatabaseSettings, runner: DatabaseRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = service(db_settings, runner, StubController(resources={ACCOUNT: {"companyName": "Acme"}}))
    real_submit = jobs.submit
    others: list[threading.Timer] = []

    def submit_then_taken(*args: Any) -> Any:
        """Another serving process's job runner claims the fresh job before this request can."""
        view = real_submit(*args)
        ticket = jobs.claim(view.id, 60)
        assert ticket is not None
        others.append(threading.Timer(0.2, svc.executor.execute, [ticket]))
        others[-1].start()
        return view

    monkeypatch.setattr(jobs, "submit", submit_then_taken)
    try:
        outcome = provision(svc, bound, str(uuid.uuid4()))
        assert outcome.status == 201 and outcome.body is not None and outcome.body["name"] == "Acme"
    finally:
        for other in others:
            other.join(5)
        svc.close()


def test_configured_async_answers_202_and_the_poll_sees_the_real_state(
    bound: Bound, db_settings: DatabaseSettings, runner: DatabaseRunner
) -> None:
    svc = service(db_settings, runner, StubController(), async_operations=(PROVISION,))
    try:
        aps_id = str(uuid.uuid4())
        started = provision(svc, bound, aps_id, name="N")
        assert started.status == 202 and started.headers == {"APS-Retry-Timeout": "1", "APS-Info": "Queued."}
        assert provision(svc, bound, aps_id, phase="async", name="N").status == 202  # nothing ran yet
        assert ApsResource.select().count() == 0
        assert svc.runner.drain() == 1
        done = provision(svc, bound, aps_id, phase="async", name="N")
        assert done.status == 201 and done.body is not None and done.body["name"] == "N"
    finally:
        svc.close()


def test_a_slow_step_turns_202_and_the_work_continues_between_polls(
    bound: Bound, db_settings: DatabaseSettings, runner: DatabaseRunner
) -> None:
    def slow(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        time.sleep(0.4)
        return 200, {"Content-Type": "application/json"}, b'{"companyName": "Slow Corp"}'

    svc = service(db_settings, runner, StubController(respond=slow), sync_budget=0.05)
    try:
        aps_id = str(uuid.uuid4())
        started = time.monotonic()
        first = provision(svc, bound, aps_id)
        assert first.status == 202 and time.monotonic() - started < 0.35
        assert first.headers["APS-Info"] == "In progress (attempt 1)."
        deadline = time.monotonic() + 5
        while ApsJob.get(ApsJob.aps_id == aps_id).state != DONE and time.monotonic() < deadline:
            time.sleep(0.02)  # no runner thread here: the request's own execution finishes the job
        polled = provision(svc, bound, aps_id, phase="async")
        assert polled.status == 201 and polled.body is not None and polled.body["name"] == "Slow Corp"
    finally:
        svc.close()


def test_a_job_that_gives_up_answers_500_not_transient(
    bound: Bound, db_settings: DatabaseSettings, runner: DatabaseRunner
) -> None:
    svc = service(db_settings, runner, StubController(status=503), job_max_attempts=1, controller_max_tries=1)
    try:
        outcome = provision(svc, bound, str(uuid.uuid4()))
        assert outcome.status == 500 and outcome.headers == {"APS-Transient-Error": "false"}
        assert outcome.body == {
            "code": 500,
            "error": "OperationFailed",
            "message": "Gave up after 1 attempts: The controller answered 503.",
        }
    finally:
        svc.close()


def test_a_domain_error_in_the_sync_phase_is_raised(
    bound: Bound, db_settings: DatabaseSettings, runner: DatabaseRunner
) -> None:
    create_user("boss", bound.partner)
    svc = service(db_settings, runner, StubController())
    try:
        with pytest.raises(Conflict):
            provision(svc, bound, str(uuid.uuid4()), name="N", admin="boss")
    finally:
        svc.close()


def test_a_poll_without_a_job_runs_the_idempotent_request(
    bound: Bound, db_settings: DatabaseSettings, runner: DatabaseRunner
) -> None:
    svc = service(db_settings, runner, StubController())
    try:
        assert provision(svc, bound, str(uuid.uuid4()), phase="async", name="N").status == 201
    finally:
        svc.close()


def test_events_are_acknowledged_and_users_change_syncs_usage(
    bound: Bound, db_settings: DatabaseSettings, runner: DatabaseRunner
) -> None:
    svc = service(db_settings, runner, StubController())
    try:
        aps_id = str(uuid.uuid4())
        provision(svc, bound, aps_id, name="N")
        event = EventInput("http://aps-standard.org/types/core/resource/1.0#Changed", aps_id, None)
        assert asyncio.run(svc.event(bound.ctx(), "tenants", aps_id, "onUsersChange", event)).status == 204
        assert ApsJob.get_or_none((ApsJob.aps_id == aps_id) & (ApsJob.operation == USAGE_SYNC)) is not None
        assert asyncio.run(svc.event(bound.ctx(), "tenants", aps_id, "onSomethingElse", event)).status == 204
        assert (
            asyncio.run(svc.event(bound.ctx(), "tenants", str(uuid.uuid4()), "onUsersChange", event)).status
            == 204
        )
    finally:
        svc.close()


def test_test_connection_reports_steps(
    bound: Bound, db_settings: DatabaseSettings, runner: DatabaseRunner
) -> None:
    stub = StubController(resources={bound.instance.aps_id: {"aps": {"id": bound.instance.aps_id}}})
    svc = service(db_settings, runner, stub)
    try:
        outcome = asyncio.run(svc.test_connection(bound.ctx(), bound.instance.aps_id))
        assert outcome.status == 200 and outcome.body is not None
        assert [s["name"] for s in outcome.body["steps"]] == ["proxy", "controller", "acronis"]
        assert outcome.body["steps"][1]["ok"] is True
    finally:
        svc.close()
