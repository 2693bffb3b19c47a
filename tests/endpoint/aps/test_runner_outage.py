"""A job-backed APS request while the database goes away: a 503 and a job retried, never a 500.

The PostgreSQL soak met a server restart (another test suite restarted the shared cluster) and one
`POST /tenants/{id}/enable` got 500 with a traceback: the job executor runs on the outbound threads, outside
the database runner, so a lost connection came out of it as a raw driver error.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import peewee as pw
import pytest

from endpoint.aps import jobs
from endpoint.aps.operations import tenant_payload
from endpoint.aps.outbound import Outbound
from endpoint.aps.payloads import TenantInput
from endpoint.aps.runner import JobExecutor
from endpoint.errors import Unavailable
from models import ApsJob
from models.aps import PENDING, RUNNING
from proxy.session import ProxySettings
from tests.support.aps_builders import (
    ACCOUNT,
    INSTANCE_ID,
    TENANT_TYPE,
    Bound,
    StubController,
    aps_settings,
)


@pytest.fixture
def outbound() -> Iterator[Outbound]:
    stub = StubController(resources={ACCOUNT: {"companyName": "Acme"}})
    holder = Outbound(ProxySettings(), aps_settings(), {}, session=stub.session)
    yield holder
    holder.close()


@pytest.fixture
def lost(monkeypatch: pytest.MonkeyPatch) -> pw.OperationalError:
    """The error a dropped server connection raises (classified as lost, as psycopg2's would be)."""
    monkeypatch.setattr("endpoint.work.executors.connection_lost", lambda e: True)
    return pw.OperationalError("server closed the connection unexpectedly")


def submit() -> jobs.JobView:
    aps_id = str(uuid.uuid4())
    tenant = TenantInput(aps_id, TENANT_TYPE, "Acme", ACCOUNT, None, None)
    return jobs.submit(INSTANCE_ID, aps_id, "tenants.provision", tenant_payload(tenant), "tx-7")


def raiser(error: Exception) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail


def test_the_database_down_before_the_claim_is_unavailable_not_a_driver_error(
    bound: Bound, outbound: Outbound, lost: pw.OperationalError, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = submit()
    monkeypatch.setattr("endpoint.aps.runner.jobs.claim", raiser(lost))
    with pytest.raises(Unavailable) as caught:  # 503 for the sync request
        JobExecutor(aps_settings(), outbound).run(view.id, raise_domain_errors=True)
    assert caught.value.reason == "database connection lost (OperationalError)"
    assert ApsJob.get_by_id(view.id).state == PENDING  # untouched: the runner takes it up later


def test_a_connection_lost_under_the_job_retries_it_with_a_warning_and_no_traceback(
    bound: Bound,
    outbound: Outbound,
    lost: pw.OperationalError,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    view = submit()
    monkeypatch.setattr("endpoint.aps.runner.jobs.complete", raiser(lost))
    after = JobExecutor(aps_settings(), outbound).run(view.id, raise_domain_errors=True)
    assert after is not None and after.state == PENDING and after.attempts == 1
    assert after.error == "Service unavailable."
    records = [r for r in caplog.records if r.name == "endpoint.aps.runner"]
    assert records and all(r.exc_info is None and r.levelno <= logging.WARNING for r in records)


def test_still_down_when_recording_the_retry_is_unavailable_and_the_lease_resumes_the_job(
    bound: Bound, outbound: Outbound, lost: pw.OperationalError, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = submit()
    monkeypatch.setattr("endpoint.aps.runner.jobs.complete", raiser(lost))
    monkeypatch.setattr("endpoint.aps.runner.jobs.retry_later", raiser(lost))
    with pytest.raises(Unavailable):
        JobExecutor(aps_settings(), outbound).run(view.id, raise_domain_errors=True)
    assert ApsJob.get_by_id(view.id).state == RUNNING  # claimed, with a lease that runs out


def test_other_database_errors_are_not_taken_for_an_outage(
    bound: Bound, outbound: Outbound, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = submit()
    monkeypatch.setattr("endpoint.aps.runner.jobs.claim", raiser(pw.IntegrityError("duplicate key")))
    with pytest.raises(pw.IntegrityError):
        JobExecutor(aps_settings(), outbound).run(view.id, raise_domain_errors=True)
