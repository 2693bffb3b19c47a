"""The worker against the simulator (and a real forward proxy): the simulator's record is the oracle."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import peewee as pw
import pytest
from prometheus_client.parser import text_string_to_metric_families

from endpoint.observability.metrics import PushMetrics
from endpoint.outbox.worker import Worker, build_worker, dead_local_worker
from models.db import DatabaseSettings, unit_of_work, utcnow
from models.outbox import DEAD, DELIVERED, PENDING, OutboxItem
from tests.endpoint.outbox.conftest import ENVIRON, Stack, alert, build_settings, workload
from tests.endpoint.outbox.produce import enqueue_alert, enqueue_workloads
from tests.support.databases import database_name, kill_sessions
from tests.support.simulator_processes import ProxyProcess, Simulator, Tls, wait_until


def worker_for(stack: Stack, stop: threading.Event | None = None) -> Worker:
    worker = build_worker(stack.settings, ENVIRON, stop=stop or threading.Event(), with_spool=False)
    worker.start()
    return worker


def drain(worker: Worker, timeout: float = 20.0) -> None:
    """Run passes until nothing is pending (backoffs and pauses included)."""
    deadline = time.monotonic() + timeout
    while OutboxItem.select().where(OutboxItem.status == PENDING).exists():
        assert time.monotonic() < deadline, "outbox not drained in time"
        worker.run_once()
        time.sleep(0.02)


def endpoint_statuses(sim: Simulator, endpoint: str) -> list[int]:
    return [r["status"] for r in sim.received()["requests"] if r["endpoint"] == endpoint]


def received_seqs(sim: Simulator) -> list[tuple[str, int]]:
    """(tenant, seq) of every accepted alert and workload, in arrival order."""
    received = sim.received()
    alerts = [(a["tenantID"], int(a["details"]["fields"]["Seq"])) for a in received["alerts"]]
    workloads = [(w["tenant_id"], int(w["attributes"]["seq"])) for w in received["workloads"]]
    return alerts + workloads


def queue_mixed(stack: Stack, count: int) -> list[tuple[str, int]]:
    queued = []
    for n in range(count):
        tenant = stack.tenants[n % len(stack.tenants)]
        if n % 3 == 0:
            enqueue_alert(alert(tenant, n), stack.rules)
        else:
            enqueue_workloads([workload(tenant, n)], stack.rules)
        queued.append((tenant, n))
    return queued


def test_batching_counts_requests(stack: Stack, simulator: Simulator) -> None:
    enqueue_workloads([workload(stack.tenants[n % 3], n) for n in range(250)], stack.rules)
    summary = worker_for(stack).run_once()
    assert summary.sent == 250 and summary.pending_due == 0
    assert endpoint_statuses(simulator, "workloads") == [204, 204, 204]  # batch_size 100
    assert simulator.received()["tokens_issued"] == 1


def test_deliveries_are_counted_in_the_metrics(stack: Stack, simulator: Simulator) -> None:
    metrics = PushMetrics()
    worker = build_worker(stack.settings, ENVIRON, stop=threading.Event(), with_spool=False, metrics=metrics)
    worker.start()
    enqueue_workloads([workload(stack.tenants[n % 3], n) for n in range(7)], stack.rules)
    assert worker.run_once().sent == 7
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.render()[0].decode())
        for s in family.samples
    }
    dc = stack.settings.acronis.datacenters[0].key
    assert found[("connector_outbox_deliveries_total", (("datacenter", dc), ("result", "sent")))] == 7
    assert found[("connector_proxy_up", ())] == 1


def test_token_expired_early_is_refreshed(stack: Stack, simulator: Simulator) -> None:
    worker = worker_for(stack)
    for n in range(3):
        enqueue_alert(alert(stack.tenants[0], n), stack.rules)
    worker.run_once()
    simulator.expire_tokens()
    for n in range(3, 6):
        enqueue_alert(alert(stack.tenants[0], n), stack.rules)
    worker.run_once()
    assert endpoint_statuses(simulator, "alerts") == [200, 200, 200, 401, 200, 200, 200]
    assert simulator.received()["tokens_issued"] == 2
    assert [s for _, s in received_seqs(simulator)] == list(range(6))
    ids = {a["id"] for a in simulator.received()["alerts"]}
    assert {i.remote_id for i in OutboxItem.select()} == ids


def test_retries_then_delivers(stack: Stack, simulator: Simulator) -> None:
    simulator.faults({"endpoint": "alerts", "status": 503, "count": 3})
    enqueue_alert(alert(stack.tenants[0], 1), stack.rules)
    drain(worker_for(stack))
    item = OutboxItem.get()
    assert endpoint_statuses(simulator, "alerts") == [503, 503, 503, 200]
    assert (item.status, item.attempts) == (DELIVERED, 2)  # cycle 1: 503 503; cycle 2: 503 200


def test_poison_item_is_dead_lettered_and_the_rest_flows(
    stack: Stack, simulator: Simulator, db_settings: DatabaseSettings, tls: Tls, tmp_path: Path
) -> None:
    stack.settings = build_settings(db_settings, simulator.url, tls, tmp_path, max_attempts=2)
    simulator.faults({"endpoint": "alerts", "status": 500, "count": -1, "match": "poison"})
    enqueue_alert(alert(stack.tenants[0], 1, ResourceName="poison"), stack.rules)
    for n in range(2, 5):
        enqueue_alert(alert(stack.tenants[n % 2], n), stack.rules)
    drain(worker_for(stack))
    dead = OutboxItem.get(OutboxItem.status == DEAD)
    assert dead.attempts == 2 and "500" in dead.last_error
    assert sorted(s for _, s in received_seqs(simulator)) == [2, 3, 4]


def test_bad_item_in_a_batch_is_isolated_by_bisection(stack: Stack, simulator: Simulator) -> None:
    simulator.faults(
        {
            "endpoint": "workloads",
            "status": 400,
            "count": -1,
            "match": '"vm-13"',
            "body": '{"error": "invalid attribute"}',
        }
    )
    enqueue_workloads([workload(stack.tenants[n % 3], n) for n in range(32)], stack.rules)
    summary = worker_for(stack).run_once()
    assert (summary.sent, summary.dead) == (31, 1)
    assert len(endpoint_statuses(simulator, "workloads")) == 1 + 2 * 5  # 32 -> 1: two requests per level
    dead = OutboxItem.get(OutboxItem.status == DEAD)
    assert json.loads(dead.payload)["name"] == "vm-13" and "invalid attribute" in dead.last_error


def test_per_tenant_order_survives_failures(stack: Stack, simulator: Simulator) -> None:
    simulator.faults(
        {"endpoint": "alerts", "status": 503, "count": 5},
        {"endpoint": "workloads", "status": 502, "count": 3},
    )
    queued = queue_mixed(stack, 60)
    drain(worker_for(stack))
    got = received_seqs(simulator)
    assert sorted(got) == sorted(queued)
    arrival = [(r["tenant"], r["seq"]) for r in _arrival_order(simulator)]
    for tenant in stack.tenants:
        seqs = [s for t, s in arrival if t == tenant]
        assert seqs == sorted(seqs)


def _arrival_order(sim: Simulator) -> list[dict[str, Any]]:
    """Accepted items in the order the simulator processed the requests."""
    out = []
    for r in sim.received()["requests"]:
        if r["status"] == 200 and r["endpoint"] == "alerts":
            out.append({"tenant": r["body"]["tenantID"], "seq": int(r["body"]["details"]["fields"]["Seq"])})
        elif r["status"] == 204:
            out += [
                {"tenant": i["tenant_id"], "seq": int(i["attributes"]["seq"])} for i in r["body"]["items"]
            ]
    return out


def test_unconfigured_datacenter_keeps_items_queued_and_sends_nothing(
    stack: Stack, simulator: Simulator
) -> None:
    OutboxItem.create(
        kind="alert",
        tenant_id=stack.tenants[0],
        datacenter_url="https://attacker.example",
        payload=json.dumps(alert(stack.tenants[0])),
    )
    summary = worker_for(stack).run_once()
    item = OutboxItem.get()
    assert item.status == PENDING and "not configured" in item.last_error
    assert "https://attacker.example" in summary.outages
    assert simulator.received()["requests"] == []


def test_graceful_stop_finishes_the_in_flight_request(stack: Stack, simulator: Simulator) -> None:
    simulator.faults({"endpoint": "alerts", "status": 0, "delay": 0.5, "count": 1})
    for n in range(3):
        enqueue_alert(alert(stack.tenants[0], n), stack.rules)
    stop = threading.Event()
    worker = worker_for(stack, stop)
    thread = threading.Thread(target=worker.run_forever)
    thread.start()
    assert wait_until(lambda: simulator.received()["tokens_issued"] == 1)
    time.sleep(0.2)  # the first alert is now held by the simulator
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert [i.status for i in OutboxItem.select().order_by(OutboxItem.id)] == [DELIVERED, PENDING, PENDING]
    assert len(simulator.received()["alerts"]) == 1


# --- through the forward proxy -----------------------------------------------------------------------------


@pytest.fixture
def proxied(
    stack: Stack,
    proxy_process: ProxyProcess,
    db_settings: DatabaseSettings,
    simulator: Simulator,
    tls: Tls,
    tmp_path: Path,
) -> Stack:
    stack.settings = build_settings(db_settings, simulator.url, tls, tmp_path, proxy=proxy_process.url)
    return stack


def test_every_request_goes_through_the_proxy_with_no_direct_egress(
    proxied: Stack, simulator: Simulator, proxy_process: ProxyProcess
) -> None:
    queued = queue_mixed(proxied, 30)
    worker = worker_for(proxied)
    blocked: list[Any] = []
    real_connect = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> None:
        if tuple(address[:2]) != ("127.0.0.1", proxy_process.port):
            blocked.append(address)
            raise ConnectionRefusedError("test: direct egress blocked")
        real_connect(sock, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", guarded)
        summary = worker.run_once()
    assert blocked == [] and summary.sent == 30
    assert sorted(received_seqs(simulator)) == sorted(queued)
    flows = proxy_process.flows()
    assert flows and {f["target"] for f in flows} == {f"127.0.0.1:{simulator.port}"}
    assert len(flows) == 1  # token, alerts and workloads share one kept-alive tunnel


def test_proxy_killed_mid_delivery_then_restarted_loses_nothing(
    proxied: Stack, simulator: Simulator, proxy_process: ProxyProcess
) -> None:
    queued = [(t, n) for t, n in queue_mixed(proxied, 90)]
    worker = worker_for(proxied)
    client = next(iter(worker.clients.values()))
    calls = Counter[str]()
    post_alert, post_workloads = client.post_alert, client.post_workloads

    def kill_after(method: Any, kind: str) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            calls[kind] += 1
            if calls["alert"] == 10 and kind == "alert":  # between two requests: the proxy dies (kill -9)
                proxy_process.kill()
                threading.Timer(0.5, proxy_process.start).start()
            return result

        return wrapper

    client.post_alert = kill_after(post_alert, "alert")  # type: ignore[method-assign]
    client.post_workloads = kill_after(post_workloads, "workloads")  # type: ignore[method-assign]
    first = worker.run_once()
    assert first.outages and "proxy" in next(iter(first.outages.values()))
    pending = OutboxItem.select().where(OutboxItem.status == PENDING)
    assert pending.count() > 0 and all(i.attempts == 0 for i in pending)  # an outage charges no attempt
    drain(worker)
    got = received_seqs(simulator)
    assert sorted(got) == sorted(queued) and len(got) == len(set(got))  # every item exactly once
    assert OutboxItem.select().where(OutboxItem.status != DELIVERED).count() == 0
    assert len(proxy_process.flows()) >= 2  # a new tunnel after the restart


def test_proxy_killed_at_random_moments_is_at_least_once(
    proxied: Stack, simulator: Simulator, proxy_process: ProxyProcess
) -> None:
    simulator.faults({"endpoint": "alerts", "status": 0, "delay": 0.003, "count": -1})
    queued = [(stack_t, n) for stack_t, n in queue_mixed(proxied, 240)]
    worker = worker_for(proxied)
    kills = 0
    done = threading.Event()

    def chaos() -> None:
        nonlocal kills
        while not done.wait(0.15):
            proxy_process.kill()
            kills += 1
            time.sleep(0.1)
            proxy_process.start()

    thread = threading.Thread(target=chaos)
    thread.start()
    try:
        drain(worker, timeout=40)
    finally:
        done.set()
        thread.join()
        if proxy_process.proc is None or proxy_process.proc.poll() is not None:
            proxy_process.start()
    got = received_seqs(simulator)
    duplicates = len(got) - len(set(got))
    assert set(got) == set(queued)  # nothing lost
    assert duplicates <= kills  # only a request whose answer a kill swallowed can be sent twice
    assert OutboxItem.select().where(OutboxItem.status != DELIVERED).count() == 0


def test_restarted_worker_takes_back_its_leases_and_never_resends_confirmed_items(
    stack: Stack, simulator: Simulator
) -> None:
    for n in range(5):
        enqueue_alert(alert(stack.tenants[0], n), stack.rules)
    worker_for(stack).run_once()
    for n in range(5, 8):
        enqueue_alert(alert(stack.tenants[0], n), stack.rules)
    # A killed run leaves live leases on what it had claimed; only this worker may take them back early.
    OutboxItem.update(claimed_by="test-worker", lease_expires=utcnow() + dt.timedelta(hours=1)).where(
        OutboxItem.status == PENDING
    ).execute()
    worker_for(stack).run_once()
    assert [s for _, s in received_seqs(simulator)] == list(range(8))


def test_leases_of_dead_workers_on_this_host_are_taken_back_at_start(stack: Stack) -> None:
    """Default identities are "<host>:<pid>": a dead local pid frees its leases now, a live one keeps them."""
    host = socket.gethostname()[:48]
    finished = subprocess.Popen(["true"])
    finished.wait()
    holders = [f"{host}:{finished.pid}", f"{host}:{os.getppid()}", "another-host:1"]
    for n, holder in enumerate(holders):
        enqueue_alert(alert(stack.tenants[0], n), stack.rules)
        OutboxItem.update(claimed_by=holder, lease_expires=utcnow() + dt.timedelta(hours=1)).where(
            OutboxItem.claimed_by.is_null() & (OutboxItem.status == PENDING)
        ).execute()
    worker_for(stack).start()
    assert sorted(OutboxItem.lease_holders()) == sorted(holders[1:])  # only the dead local pid's are freed


def test_dead_local_worker() -> None:
    host = "box"
    finished = subprocess.Popen(["true"])
    finished.wait()
    assert dead_local_worker(f"box:{finished.pid}", host)
    assert not dead_local_worker(f"box:{os.getppid()}", host)  # alive
    assert not dead_local_worker(f"box:{os.getpid()}", host)  # ourselves
    assert not dead_local_worker(f"other:{finished.pid}", host)  # another host: only leases expire there
    assert not dead_local_worker("box:not-a-pid", host) and not dead_local_worker("explicit-id", host)


def test_summary_reports_an_empty_queue(database: pw.Database, stack: Stack) -> None:
    summary = worker_for(stack).run_once()
    assert (summary.sent, summary.pending_due, summary.outages) == (0, 0, {})


def test_a_database_error_ends_the_pass_not_the_worker(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    stop = threading.Event()
    worker = worker_for(stack, stop)
    outcomes: list[Any] = [pw.OperationalError("server closed the connection unexpectedly")]

    def run_once() -> Any:
        if outcomes:
            raise outcomes.pop()
        stop.set()
        return Worker.run_once(worker)

    monkeypatch.setattr(worker, "run_once", run_once)
    worker.run_forever()  # returns once stopped: the error did not escape
    assert any("outbox: database error (server closed" in r.getMessage() for r in caplog.records)


def test_the_worker_keeps_delivering_while_the_server_kills_its_connections(
    stack: Stack, simulator: Simulator, db_settings: DatabaseSettings, database: pw.Database
) -> None:
    if db_settings.backend == "sqlite":
        pytest.skip("SQLite has no server connections to lose")
    simulator.faults({"endpoint": "alerts", "status": 0, "delay": 0.01, "count": -1})
    for n in range(60):
        enqueue_alert(alert(stack.tenants[n % 3], n), stack.rules)
    database.close()  # from here on the test thread, too, works in units of work

    def delivered() -> int:
        with unit_of_work():
            return int(OutboxItem.select().where(OutboxItem.status == DELIVERED).count())

    stop = threading.Event()
    worker = worker_for(stack, stop)
    thread = threading.Thread(target=worker.run_forever)
    thread.start()
    try:
        kills = 0
        while delivered() < 60 and kills < 20:
            time.sleep(0.1)
            kills += 1 if kill_sessions(db_settings.backend, database_name(db_settings)) else 0
        assert wait_until(lambda: delivered() == 60, timeout=30)
        assert thread.is_alive() and kills > 0
    finally:
        stop.set()
        thread.join(10)
    assert {s for _, s in received_seqs(simulator)} == set(range(60))  # at least once, nothing lost
