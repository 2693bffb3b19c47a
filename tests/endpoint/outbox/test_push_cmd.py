"""``python -m endpoint push``: in-process runs, real processes killed (SIGKILL, SIGTERM), three at once."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import peewee as pw
import pytest

from endpoint.commands.cli import main
from endpoint.outbox import push_cmd
from models.db import DatabaseSettings
from models.outbox import DELIVERED, PENDING, OutboxItem
from tests.endpoint.outbox.conftest import Stack, alert, workload, write_config
from tests.endpoint.outbox.produce import enqueue_alert, enqueue_workloads
from tests.support.simulator_processes import CLIENT_SECRET, ROOT, SECRET_ENV, ProxyProcess, Simulator, Tls
from tests.support.simulator_processes import wait_until as until


def test_push_once_ingests_the_spool_and_delivers(
    stack: Stack,
    config: Path,
    simulator: Simulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    (tmp_path / "spool").mkdir()
    (tmp_path / "spool" / "w.jsonl").write_text(
        "\n".join(json.dumps({"kind": "workload", **workload(t, n)}) for n, t in enumerate(stack.tenants))
    )
    enqueue_alert(alert(stack.tenants[0], 9), stack.rules)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["push", "--once", "--config", str(config)]) == 0
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored after the run
    out = capsys.readouterr().out
    assert "sent=4" in out and "ingested=3" in out and "pending=0" in out
    assert len(simulator.received()["workloads"]) == 3 and len(simulator.received()["alerts"]) == 1


def test_push_once_reports_pending_items(
    stack: Stack, config: Path, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    simulator.faults({"endpoint": "alerts", "status": 503, "count": -1})
    enqueue_alert(alert(stack.tenants[0]), stack.rules)
    assert main(["push", "--once", "--no-spool", "--config", str(config)]) == 1


def test_push_refuses_an_unmigrated_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["push", "--once", "--db", f"sqlite:///{tmp_path / 'empty.db'}"]) == 2
    assert "migrate" in capsys.readouterr().err


def test_push_names_a_missing_secret_variable(
    stack: Stack, config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    assert main(["push", "--once", "--config", str(config)]) == 2
    assert SECRET_ENV in capsys.readouterr().err


def spawn_push(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(config.parent),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(ROOT),
        SECRET_ENV: CLIENT_SECRET,
    }
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "endpoint", "push", "--progress", "plain", "--config", str(config)],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=sink,
        )


def delivered() -> int:
    return int(OutboxItem.select().where(OutboxItem.status == DELIVERED).count())


def alert_seqs(sim: Simulator) -> Counter[int]:
    return Counter(int(a["details"]["fields"]["Seq"]) for a in sim.received()["alerts"])


def test_kill_9_loses_nothing_and_confirmed_items_are_not_resent(
    stack: Stack,
    db_settings: DatabaseSettings,
    simulator: Simulator,
    proxy_process: ProxyProcess,
    tls: Tls,
    tmp_path: Path,
    database: pw.Database,
) -> None:
    config = write_config(
        tmp_path / "c.toml", db_settings, simulator, tls, tmp_path / "spool", proxy=proxy_process.url
    )
    simulator.faults({"endpoint": "alerts", "status": 0, "delay": 0.01, "count": -1})
    for n in range(150):
        enqueue_alert(alert(stack.tenants[n % 3], n), stack.rules)
    worker = spawn_push(config, tmp_path / "push.log")
    try:
        assert until(lambda: len(simulator.received()["alerts"]) >= 40, timeout=15)
        worker.kill()  # SIGKILL: no cleanup, leases and the in-flight request abandoned
        worker.wait(timeout=5)
        confirmed_before = delivered()
        assert 0 < confirmed_before < 150
        worker = spawn_push(config, tmp_path / "push.log")
        assert until(lambda: delivered() == 150, timeout=20)
    finally:
        worker.terminate()
        worker.wait(timeout=5)
    seqs = alert_seqs(simulator)
    assert set(seqs) == set(range(150))  # nothing lost
    assert sum(seqs.values()) - 150 <= 1  # at most the one request in flight at the kill
    assert {a["id"] for a in simulator.received()["alerts"]} >= {i.remote_id for i in OutboxItem.select()}


def test_sigterm_finishes_the_in_flight_request_and_exits(
    stack: Stack, config: Path, simulator: Simulator, tmp_path: Path, database: pw.Database
) -> None:
    simulator.faults({"endpoint": "alerts", "status": 0, "delay": 0.05, "count": -1})
    for n in range(100):
        enqueue_alert(alert(stack.tenants[0], n), stack.rules)
    worker = spawn_push(config, tmp_path / "push.log")
    try:
        assert until(lambda: len(simulator.received()["alerts"]) >= 5, timeout=15)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=5) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    # Graceful: every alert the API accepted was recorded as delivered, so a restart resends nothing.
    assert delivered() == len(simulator.received()["alerts"]) < 100
    log: Any = (tmp_path / "push.log").read_text()
    assert "stop requested" in log and CLIENT_SECRET not in log and "Bearer" not in log


# -- several workers on one outbox ----------------------------------------------------------------
def worker_config(base: Path, worker: str, **outbox: object) -> Path:
    """``base`` with its own worker id and extra [outbox] settings (that table is the file's last)."""
    text = base.read_text().replace('worker_id = "push-test"', f'worker_id = "{worker}"')
    path = base.with_name(f"{worker}.toml")
    path.write_text(text + "".join(f"{key} = {value}\n" for key, value in outbox.items()))
    return path


def arrivals(sim: Simulator) -> list[tuple[str, int]]:
    """(tenant, seq) of every accepted alert and workload, in arrival order."""
    received = sim.received()
    alerts = [(a["tenantID"], int(a["details"]["fields"]["Seq"])) for a in received["alerts"]]
    return alerts + [(w["tenant_id"], int(w["attributes"]["seq"])) for w in received["workloads"]]


def queue_for_three_workers(stack: Stack, count: int) -> None:
    for n in range(count):
        tenant = stack.tenants[n % 3]
        if n % 2:
            enqueue_alert(alert(tenant, n), stack.rules)
        else:
            enqueue_workloads([workload(tenant, n)], stack.rules)


def stop_all(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def test_three_workers_share_the_outbox_and_deliver_each_item_once(
    stack: Stack, config: Path, simulator: Simulator, tmp_path: Path, database: pw.Database
) -> None:
    simulator.faults({"endpoint": "*", "status": 0, "delay": 0.005, "count": -1})
    queue_for_three_workers(stack, 300)
    configs = [worker_config(config, f"w{n}", claim_limit=7) for n in range(3)]
    workers = [spawn_push(c, tmp_path / f"{c.stem}.log") for c in configs]
    try:
        assert until(lambda: delivered() == 300, timeout=60), f"{delivered()} of 300 delivered"
    finally:
        stop_all(workers)
    seen = arrivals(simulator)
    assert sorted(Counter(seen).values()) == [1] * 300  # every item, none twice
    for tenant in stack.tenants:  # and each tenant's items in the order they were queued
        for kind in ("alert", "workload"):
            order = [n for t, n in seen if t == tenant and (n % 2 == 1) == (kind == "alert")]
            assert order == sorted(order)
    stuck = OutboxItem.select().where(OutboxItem.claimed_by.is_null(False) | (OutboxItem.status != DELIVERED))
    assert not stuck.exists()  # no lease left behind either
    assert all(worker.returncode == 0 for worker in workers)
    shares = [sent_by(tmp_path / f"{c.stem}.log") for c in configs]
    assert sum(shares) == 300 and min(shares) > 0, shares  # all three took part


def sent_by(log: Path) -> int:
    """Items one worker delivered: its last progress line per tenant (printed again at SIGTERM)."""
    last: dict[str, int] = {}
    for tenant, sent in re.findall(r"tenant=(\S+) remaining=\d+ sent=(\d+)", log.read_text()):
        last[tenant] = int(sent)
    return sum(last.values())


def test_a_killed_workers_leases_are_taken_over_once_they_expire(
    stack: Stack, config: Path, simulator: Simulator, tmp_path: Path, database: pw.Database
) -> None:
    # Alert 60 hangs for 3 s at the API: whoever sends it is surely mid-request, holding its leases.
    simulator.faults(
        {"endpoint": "alerts", "status": 0, "delay": 3.0, "match": '"seq 60"', "count": 1},
        {"endpoint": "alerts", "status": 0, "delay": 0.01, "count": -1},
    )
    for n in range(150):
        enqueue_alert(alert(stack.tenants[n % 3], n), stack.rules)
    hung = OutboxItem.get(OutboxItem.payload.contains('"seq 60"'))
    configs = {f"w{n}": worker_config(config, f"w{n}", claim_limit=15, lease_seconds=2.0) for n in range(3)}
    workers = {name: spawn_push(c, tmp_path / f"{name}.log") for name, c in configs.items()}
    try:

        def sending() -> bool:  # leased, and the tenant's previous alert went through: 60 is in flight
            return OutboxItem.get_by_id(hung.id).claimed_by is not None and 57 in alert_seqs(simulator)

        assert until(sending, timeout=20)
        time.sleep(0.3)
        victim = OutboxItem.get_by_id(hung.id).claimed_by
        assert victim in workers
        workers[victim].kill()  # SIGKILL mid-request: its leases and the hung request are abandoned
        workers[victim].wait(timeout=5)
        held = OutboxItem.select().where((OutboxItem.claimed_by == victim) & (OutboxItem.status == PENDING))
        orphans = {item.id: item.lease_expires for item in held}
        assert hung.id in orphans
        assert until(lambda: delivered() == 150, timeout=30), f"{delivered()} of 150 delivered"
        assert until(lambda: alert_seqs(simulator)[60] == 2, timeout=10)  # the hung request completes too
    finally:
        stop_all(list(workers.values()))
    for item in OutboxItem.select().where(OutboxItem.id.in_(list(orphans))):
        assert item.status == DELIVERED
        assert item.delivered_at >= orphans[item.id]  # nobody touched them while the lease ran
    seqs = alert_seqs(simulator)
    assert set(seqs) == set(range(150))  # nothing lost
    assert {seq for seq, n in seqs.items() if n > 1} == {60}  # only the request in flight at the kill
    assert not OutboxItem.select().where(OutboxItem.claimed_by.is_null(False)).exists()


def test_the_signal_handler_only_sets_the_stop_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """No I/O in a signal handler: a log write there can re-enter the stream the main thread is writing
    ("reentrant call inside BufferedWriter") and kill the worker mid-stop (seen under load on MariaDB)."""
    stop = threading.Event()
    previous = push_cmd._install_signals(stop)
    try:
        handler = signal.getsignal(signal.SIGTERM)

        def no_logging(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("the handler logged")

        monkeypatch.setattr(push_cmd.log, "info", no_logging)
        monkeypatch.setattr(push_cmd.log, "warning", no_logging)
        handler(signal.SIGTERM, None)  # type: ignore[operator]
        assert stop.is_set()
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
