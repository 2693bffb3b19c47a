"""Executor and runner: effects and answers commit together; outages retry; the runner resumes orphans."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator

import peewee as pw
import pytest

from endpoint.aps import jobs
from endpoint.aps.operations import tenant_payload
from endpoint.aps.outbound import Outbound
from endpoint.aps.payloads import AdminInput, TenantInput
from endpoint.aps.runner import JobExecutor, JobRunner, public_reason
from endpoint.errors import Conflict
from models import ApsJob, ApsResource
from models.aps import DONE, FAILED, PENDING, RUNNING
from models.db import utcnow
from proxy.errors import ApiUnavailable, ConnectorConfigError, ProxyFailure, TransportError
from proxy.session import ProxySettings
from tests.support.aps_builders import (
    ACCOUNT,
    INSTANCE_ID,
    TENANT_TYPE,
    Bound,
    StubController,
    aps_settings,
)
from tests.support.builders import create_user


@pytest.fixture
def stub() -> StubController:
    return StubController(resources={ACCOUNT: {"companyName": "Acme"}})


@pytest.fixture
def outbound(stub: StubController) -> Iterator[Outbound]:
    holder = Outbound(ProxySettings(), aps_settings(), {}, session=stub.session)
    yield holder
    holder.close()


def submit(name: str | None = None, admin: str | None = None) -> jobs.JobView:
    aps_id = str(uuid.uuid4())
    tenant = TenantInput(aps_id, TENANT_TYPE, name, ACCOUNT, None, AdminInput(admin) if admin else None)
    return jobs.submit(INSTANCE_ID, aps_id, "tenants.provision", tenant_payload(tenant), "tx-3")


def test_a_job_runs_to_done_with_its_effect(bound: Bound, outbound: Outbound) -> None:
    view = submit()
    done = JobExecutor(aps_settings(), outbound).run(view.id)
    assert done is not None and done.state == DONE and done.result_status == 201
    assert done.result is not None and done.result["name"] == "Acme"
    assert ApsResource.get_by_id(view.aps_id).organization_id == done.result["tenantId"]


def test_an_outage_is_retried_later_with_a_reason_safe_to_show(bound: Bound, outbound: Outbound) -> None:
    outbound._session = StubController(status=503).session  # the controller is down
    view = submit()
    after = JobExecutor(aps_settings(), outbound).run(view.id)
    assert after is not None and after.state == PENDING and after.attempts == 1
    assert after.error == "The controller answered 503."
    assert ApsResource.select().count() == 0


def test_a_domain_error_fails_the_job_and_is_raised_in_the_sync_phase(
    bound: Bound, outbound: Outbound
) -> None:
    create_user("boss", bound.partner)
    view = submit(name="N", admin="boss")
    with pytest.raises(Conflict):
        JobExecutor(aps_settings(), outbound).run(view.id, raise_domain_errors=True)
    assert ApsJob.get_by_id(view.id).state == FAILED


def test_a_job_someone_else_runs_is_left_alone(bound: Bound, outbound: Outbound) -> None:
    view = submit()
    assert jobs.claim(view.id, lease=60) is not None
    after = JobExecutor(aps_settings(), outbound).run(view.id)
    assert after is not None and after.state == RUNNING and after.attempts == 1


def test_the_runner_thread_picks_up_pending_and_orphaned_jobs(bound: Bound, outbound: Outbound) -> None:
    settings = aps_settings()
    pending = submit()
    orphan = submit()
    jobs.claim(orphan.id, lease=60)
    ApsJob.update(lease_until=utcnow() - dt.timedelta(seconds=1)).where(ApsJob.id == orphan.id).execute()
    runner = JobRunner(settings, JobExecutor(settings, outbound), outbound)
    runner.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and ApsJob.select().where(ApsJob.state == DONE).count() < 2:
            time.sleep(0.02)
    finally:
        runner.stop()
    states = {job.id: (job.state, job.attempts) for job in ApsJob.select()}
    assert states == {pending.id: (DONE, 1), orphan.id: (DONE, 2)}


def test_drain_runs_everything_due(bound: Bound, outbound: Outbound) -> None:
    settings = aps_settings()
    submit()
    submit()
    assert JobRunner(settings, JobExecutor(settings, outbound), outbound).drain() == 2
    assert ApsJob.select().where(ApsJob.state == DONE).count() == 2


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            ConnectorConfigError("proxy.password_env: variable X is not set"),
            "outbound configuration is incomplete",
        ),
        (
            ProxyFailure("http://proxy.internal:3128", "connection to the proxy refused"),
            "connection to the proxy refused",
        ),
        (ApiUnavailable("controller apsc:6308: ...", status=503), "The controller answered 503."),
        (TransportError("controller 10.0.0.7:6308: ConnectionError"), "could not be reached"),
    ],
)
def test_public_reasons_name_no_hosts(error: Exception, reason: str) -> None:
    text = public_reason(error)  # type: ignore[arg-type]
    assert reason in text and "proxy.internal" not in text and "10.0.0.7" not in text


def test_a_database_outage_backs_off_and_logs_once_per_change(
    outbound: Outbound, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Was: a 33-line traceback every poll for as long as the database was down."""
    settings = aps_settings(job_poll_interval=0.01)
    runner = JobRunner(settings, JobExecutor(settings, outbound), outbound)
    calls: list[float] = []
    outage = [True]

    def cycle() -> int:
        calls.append(time.monotonic())
        if outage[0]:
            raise pw.OperationalError("connection to server at 127.0.0.1 failed: Connection refused")
        return 0

    monkeypatch.setattr(runner, "dispatch_due", cycle)
    monkeypatch.setattr(runner, "_purge_now_and_then", lambda: None)
    with caplog.at_level("INFO", logger="endpoint.aps.runner"):
        runner.start()
        try:
            time.sleep(0.6)
            failed = len(calls)
            outage[0] = False
            deadline = time.monotonic() + 5
            while len(calls) == failed and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.05)
        finally:
            runner.stop()
    assert failed < 15  # the poll interval alone would have made ~60 attempts in 0.6 s
    messages = [r.getMessage() for r in caplog.records if "cycles" in r.getMessage()]
    assert len(messages) == 2, messages
    assert messages[0].startswith("job runner: cycles failing (OperationalError: connection to server")
    assert messages[1].startswith(f"job runner: recovered after {failed} failed cycles")
    assert not any(r.exc_info for r in caplog.records)  # a database error is not a bug: no traceback


def test_the_pause_grows_while_cycles_fail(outbound: Outbound) -> None:
    settings = aps_settings(job_poll_interval=1.0)
    runner = JobRunner(settings, JobExecutor(settings, outbound), outbound)
    assert runner.cycle_wait(0) == 1.0
    assert 0.5 <= runner.cycle_wait(1) <= 1.0 and 4.0 <= runner.cycle_wait(4) <= 8.0
    assert runner.cycle_wait(100) <= 30.0
