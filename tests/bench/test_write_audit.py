"""The drills' audit (bench/write_audit.py) really fails on a lost, doubled or half-applied write."""

from __future__ import annotations

from pathlib import Path

from bench.signed_traffic import LogMeter
from bench.write_audit import APS_USER, TENANT_WRITE, USER_WRITE, State, Write, audit

REQUEST_ID = "0b7c3d2e-1f4a-4b5c-8d6e-7f8091a2b3c4"
LOGIN = "w" + REQUEST_ID.replace("-", "")
TENANT_ID = "1c8d4e3f-2a5b-4c6d-9e7f-8091a2b3c4d5"


def failed(verdicts: list[tuple[bool, str]]) -> list[str]:
    return [text.split(":")[0] for ok, text in verdicts if not ok]


def test_an_answered_write_present_once_with_its_ledger_row_passes() -> None:
    state = State()
    state.w_users[LOGIN] = 1
    state.ledger[REQUEST_ID] = 1
    assert failed(audit([Write(USER_WRITE, REQUEST_ID, status=200)], state)) == []


def test_an_answered_write_that_is_missing_fails() -> None:
    assert failed(audit([Write(USER_WRITE, REQUEST_ID, status=200)], State())) == ["answered 2xx"]


def test_a_user_without_its_ledger_row_is_half_applied() -> None:
    state = State()
    state.w_users[LOGIN] = 1
    verdicts = failed(audit([Write(USER_WRITE, REQUEST_ID, status=None)], state))
    assert verdicts == ["no answer (or 5xx)", "ledger matches the data"]


def test_an_unanswered_write_may_be_there_entirely_or_not_at_all() -> None:
    state = State()
    state.tenants[TENANT_ID] = state.tenant_orgs[TENANT_ID] = 1
    state.provision_jobs[TENANT_ID] = "done"
    writes = [Write(TENANT_WRITE, TENANT_ID, status=None), Write(APS_USER, REQUEST_ID, TENANT_ID, status=503)]
    assert failed(audit(writes, state)) == []


def test_a_duplicate_an_orphan_and_an_unfinished_job_fail() -> None:
    state = State()
    state.tenants[TENANT_ID] = 1
    state.tenant_orgs[TENANT_ID] = 2  # provisioned twice
    state.tenant_orgs["another"] = 1  # an organization whose resource never came
    state.provision_jobs[TENANT_ID] = "done"
    state.unfinished_jobs["tenants.usage"] = 1
    verdicts = failed(audit([Write(TENANT_WRITE, TENANT_ID, status=201)], state))
    assert verdicts == [
        "answered 2xx",
        "writes visible more than once",
        "tenant organizations without their tenant resource",
        "APS jobs still pending or running",
    ]


def test_a_refused_write_must_leave_nothing() -> None:
    state = State()
    state.aps_users[REQUEST_ID] = 1
    assert failed(audit([Write(APS_USER, REQUEST_ID, TENANT_ID, status=409)], state)) == ["answered 4xx"]


def test_the_log_meter_counts_each_line_once_by_level_and_logger(tmp_path: Path) -> None:
    log = tmp_path / "endpoint.log"
    log.write_bytes(b"2026-12-05T11:40:43.123Z INFO endpoint.access: request status=200\n2026-12-05T11:4")
    meter = LogMeter(log)
    assert meter.read() == (log.stat().st_size, 1)
    with log.open("ab") as more:
        more.write(b"0:44.000Z WARNING endpoint.work.executors: lost\nTraceback (most recent call last):\n")
    meter.read()
    assert (meter.lines, meter.tracebacks) == (3, 1)
    assert meter.by_logger == {"INFO endpoint.access": 1, "WARNING endpoint.work.executors": 1, "(other)": 1}
