"""One delivery cycle against a scripted client: planning, batching, bisecting, backoff, outages."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import peewee as pw
import pytest

from endpoint.outbox.delivery import DatacenterCycle, classify, plan
from endpoint.outbox.progress import Progress
from endpoint.outbox.settings import OutboxSettings
from models.backends import skip_locked_supported
from models.db import utcnow
from models.outbox import ALERT, DEAD, DELIVERED, PENDING, WORKLOAD, OutboxItem
from proxy.errors import (
    ApiRejected,
    ApiUnavailable,
    AuthFailure,
    ConnectorError,
    Interrupted,
    ProxyFailure,
    TransportError,
    TransportTimeout,
)

DC = "https://eu8-cloud.acronis.com"


class FakeClient:
    """Records every call; ``fail`` decides per call whether (and how) it fails."""

    def __init__(
        self, fail: Callable[[str, list[dict[str, Any]]], ConnectorError | None] | None = None
    ) -> None:
        self.calls: list[tuple[str, list[dict[str, Any]]]] = []
        self.fail = fail or (lambda kind, payloads: None)

    def post_alert(self, alert: Mapping[str, Any], *, label: str = "") -> str:
        return self._call("alert", [dict(alert)]) or "alert-id"

    def post_workloads(self, items: Sequence[Mapping[str, Any]], *, label: str = "") -> None:
        self._call("workloads", [dict(i) for i in items])

    def _call(self, kind: str, payloads: list[dict[str, Any]]) -> None:
        self.calls.append((kind, payloads))
        error = self.fail(kind, payloads)
        if error is not None:
            raise error


def add(kind: str, tenant: str, seq: int, **fields: Any) -> OutboxItem:
    return OutboxItem.create(
        kind=kind,
        tenant_id=tenant,
        datacenter_url=DC,
        payload=json.dumps({"seq": seq, "tenant": tenant}),
        **fields,
    )


def cycle(
    client: FakeClient, *, batch_size: int = 100, stop: threading.Event | None = None, **settings: Any
) -> DatacenterCycle:
    outbox = OutboxSettings(**{"backoff_base": 1.0, "backoff_max": 60.0, "worker_id": "w1", **settings})
    return DatacenterCycle(
        DC,
        client,
        outbox,
        batch_size=batch_size,
        worker="w1",  # type: ignore[arg-type]
        progress=Progress(None),
        stop=stop or threading.Event(),
        rng=lambda: 0.5,
    )


def seqs(client: FakeClient, tenant: str | None = None) -> list[int]:
    return [p["seq"] for _, payloads in client.calls for p in payloads if tenant in (None, p["tenant"])]


def statuses() -> list[str]:
    return [i.status for i in OutboxItem.select().order_by(OutboxItem.id)]


def test_plan_stops_each_tenant_at_its_first_blocked_item(database: pw.Database) -> None:
    now = utcnow()
    a1, a2 = add(ALERT, "a", 1), add(ALERT, "a", 2)
    b1 = add(ALERT, "b", 3, next_attempt_at=now + dt.timedelta(minutes=1))
    add(ALERT, "b", 4)
    c1 = add(ALERT, "c", 5, claimed_by="w2", lease_expires=now + dt.timedelta(minutes=1))
    d1 = add(ALERT, "d", 6, claimed_by="w2", lease_expires=now - dt.timedelta(minutes=1))
    queues = plan(OutboxItem.pending_in(DC, 100), utcnow(), "w1")
    assert {t: [i.id for i in q] for t, q in queues.items()} == {"a": [a1.id, a2.id], "d": [d1.id]}
    assert b1.id and c1.id


def test_plan_never_lets_a_tenant_skip_an_earlier_pending_item(database: pw.Database) -> None:
    a1, a2, a3 = add(ALERT, "a", 1), add(ALERT, "a", 2), add(ALERT, "a", 3)
    b1, b2 = add(ALERT, "b", 4), add(ALERT, "b", 5)
    c1 = add(ALERT, "c", 6)
    pending = OutboxItem.pending_ids(DC, ["a", "b", "c"], c1.id)
    assert pending == {"a": [a1.id, a2.id, a3.id], "b": [b1.id, b2.id], "c": [c1.id]}
    # Another worker's claim transaction holds a2 and b1, so SKIP LOCKED left them out of this list:
    # a stops before the gap, b (its head missing) is not sent at all.
    queues = plan([a1, a3, b2, c1], utcnow(), "w1", pending)
    assert {t: [i.id for i in q] for t, q in queues.items()} == {"a": [a1.id], "c": [c1.id]}


def test_the_claim_locks_rows_with_skip_locked_only_where_the_backend_has_it(
    database: pw.Database, caplog: pytest.LogCaptureFixture
) -> None:
    add(ALERT, "a", 1)
    with caplog.at_level(logging.DEBUG, logger="peewee"):
        assert cycle(FakeClient()).run().sent == 1
    claims = [
        r.getMessage()
        for r in caplog.records
        if "outbox_item" in r.getMessage() and "LIMIT" in r.getMessage()
    ]
    assert claims, "the claim query was not seen"
    expected = skip_locked_supported(database)  # PostgreSQL, MariaDB >= 10.6 here; never SQLite
    assert all(("FOR UPDATE SKIP LOCKED" in sql) is expected for sql in claims)


def test_workloads_are_batched_across_tenants(database: pw.Database) -> None:
    for n in range(250):
        add(WORKLOAD, "abc"[n % 3], n)
    client = FakeClient()
    outcome = cycle(client, batch_size=100).run()
    assert [len(p) for _, p in client.calls] == [100, 100, 50]
    assert outcome.sent == 250 and set(statuses()) == {DELIVERED}
    for tenant in "abc":
        assert seqs(client, tenant) == sorted(seqs(client, tenant))


def test_mixed_kinds_keep_per_tenant_order(database: pw.Database) -> None:
    kinds = [ALERT, WORKLOAD, WORKLOAD, ALERT, WORKLOAD, ALERT, ALERT, WORKLOAD]
    for n, kind in enumerate(kinds * 3):
        add(kind, "ab"[n % 2], n)
    client = FakeClient()
    cycle(client, batch_size=3).run()
    for tenant in "ab":
        assert seqs(client, tenant) == sorted(seqs(client, tenant))
    assert len(seqs(client)) == 24 and set(statuses()) == {DELIVERED}
    alert_rows = OutboxItem.select().where(OutboxItem.kind == ALERT)
    assert {row.remote_id for row in alert_rows} == {"alert-id"}


def test_rejected_batch_is_bisected_to_the_bad_item(database: pw.Database) -> None:
    for n in range(16):
        add(WORKLOAD, "a" if n % 2 else "b", n)

    def fail(kind: str, payloads: list[dict[str, Any]]) -> ConnectorError | None:
        if any(p["seq"] == 11 for p in payloads):
            return ApiRejected("rejected", status=400, body='{"error": "items[0].attributes"}')
        return None

    client = FakeClient(fail)
    outcome = cycle(client).run()
    assert (outcome.sent, outcome.dead) == (15, 1)
    bad = OutboxItem.get(OutboxItem.status == DEAD)
    assert json.loads(bad.payload)["seq"] == 11 and "items[0].attributes" in bad.last_error
    assert len(client.calls) == 1 + 2 * 4  # 16 -> 8 -> 4 -> 2 -> 1: two requests per level
    delivered = [
        json.loads(i.payload)["seq"] for i in OutboxItem.select().where(OutboxItem.status == DELIVERED)
    ]
    assert sorted(delivered) == [n for n in range(16) if n != 11]


def test_non_item_4xx_dead_letters_the_batch_without_bisecting(database: pw.Database) -> None:
    for n in range(4):
        add(WORKLOAD, "a", n)
    client = FakeClient(lambda kind, payloads: ApiRejected("gone", status=404, body="no such API"))
    outcome = cycle(client).run()
    assert outcome.dead == 4 and len(client.calls) == 1


def test_transient_failure_backs_off_and_blocks_only_that_tenant(database: pw.Database) -> None:
    add(ALERT, "a", 1), add(ALERT, "a", 2), add(ALERT, "b", 3)
    client = FakeClient(lambda kind, p: ApiUnavailable("503", status=503) if p[0]["seq"] == 1 else None)
    before = utcnow()
    outcome = cycle(client).run()
    assert seqs(client) == [1, 3] and (outcome.sent, outcome.retried) == (1, 1)
    first = OutboxItem.get_by_id(1)
    assert (first.status, first.attempts, first.claimed_by) == (PENDING, 1, None)
    assert "503" in first.last_error and first.next_attempt_at >= (
        before + dt.timedelta(seconds=0.75)
    ).replace(microsecond=0)  # MySQL: whole s
    assert OutboxItem.get_by_id(2).attempts == 0


def test_dead_letter_after_max_attempts(database: pw.Database) -> None:
    item = add(ALERT, "a", 1, attempts=2)
    client = FakeClient(lambda kind, p: TransportTimeout("read timed out"))
    outcome = cycle(client, max_attempts=3).run()
    item = OutboxItem.get_by_id(item.id)
    assert outcome.dead == 1 and (item.status, item.attempts) == (DEAD, 3)
    assert "read timed out" in item.last_error


def test_dead_letter_after_max_age(database: pw.Database) -> None:
    old = add(ALERT, "a", 1, created_at=utcnow() - dt.timedelta(hours=2), last_error="proxy down")
    add(ALERT, "a", 2)
    client = FakeClient()
    outcome = cycle(client, max_age=3600).run()
    assert (
        OutboxItem.get_by_id(old.id).status == DEAD
        and "proxy down" in OutboxItem.get_by_id(old.id).last_error
    )
    assert seqs(client) == [2] and (outcome.dead, outcome.sent) == (1, 1)


@pytest.mark.parametrize(
    "error",
    [
        ProxyFailure("http://proxy:3128", "connection to the proxy refused"),
        TransportError("reset"),
        AuthFailure("credentials revoked"),
    ],
)
def test_outages_pause_without_charging_attempts(database: pw.Database, error: ConnectorError) -> None:
    add(ALERT, "a", 1), add(ALERT, "b", 2)
    client = FakeClient(lambda kind, p: error)
    outcome = cycle(client).run()
    assert outcome.outage is error and len(client.calls) == 1
    first, second = OutboxItem.get_by_id(1), OutboxItem.get_by_id(2)
    assert (first.status, first.attempts, first.claimed_by) == (PENDING, 0, None)
    assert str(error) in first.last_error and second.last_error is None and second.claimed_by is None


def test_429_pauses_the_datacenter(database: pw.Database) -> None:
    add(ALERT, "a", 1), add(ALERT, "b", 2)
    client = FakeClient(lambda kind, p: ApiUnavailable("429", status=429, retry_after=7.0))
    outcome = cycle(client).run()
    assert outcome.pause == 7.0 and len(client.calls) == 1
    item = OutboxItem.get_by_id(1)
    assert item.attempts == 1 and item.next_attempt_at >= utcnow() + dt.timedelta(seconds=6)


def test_stop_is_checked_before_each_request(database: pw.Database) -> None:
    add(ALERT, "a", 1)
    stop = threading.Event()
    stop.set()
    client = FakeClient()
    outcome = cycle(client, stop=stop).run()
    assert outcome.stopped and client.calls == [] and OutboxItem.get_by_id(1).claimed_by is None


def test_interrupted_retry_wait_leaves_the_item_untouched(database: pw.Database) -> None:
    add(ALERT, "a", 1)
    outcome = cycle(FakeClient(lambda kind, p: Interrupted("stop"))).run()
    assert outcome.stopped and OutboxItem.get_by_id(1).attempts == 0


def test_classify() -> None:
    assert classify(ApiRejected("x", status=400)) == "rejected"
    assert classify(ApiUnavailable("x", status=503)) == "transient"
    assert classify(TransportTimeout("x")) == "transient"
    assert classify(TransportError("x")) == "outage"
    assert classify(Interrupted("x")) == "stop"


def test_backoff_is_exponential_with_jitter_and_capped(database: pw.Database) -> None:
    c = cycle(FakeClient(), backoff_base=1.0, backoff_max=8.0)
    assert [c.backoff(n, None) for n in (1, 2, 3, 4, 5)] == [0.75, 1.5, 3.0, 6.0, 6.0]
    assert c.backoff(1, 30.0) == 30.0


def test_a_backed_off_tenant_neither_starves_others_nor_is_overtaken(database: pw.Database) -> None:
    for n in range(30):
        add(ALERT, "a", n)
    for n in range(30, 35):
        add(ALERT, "b", n)
    client = FakeClient(lambda kind, p: ApiUnavailable("503", status=503) if p[0]["seq"] == 0 else None)
    cycle(client, claim_limit=10).run()  # a's head fails: its whole backlog is deferred with it
    assert seqs(client) == [0]
    late = add(ALERT, "a", 99)  # queued during the backoff: due now, but must wait for a's head
    client.fail = lambda kind, p: None
    cycle(client, claim_limit=10).run()
    assert seqs(client) == [0, 30, 31, 32, 33, 34]
    assert OutboxItem.get_by_id(late.id).status == PENDING
    OutboxItem.update(next_attempt_at=utcnow()).where(OutboxItem.status == PENDING).execute()
    for _ in range(5):
        cycle(client, claim_limit=10).run()
    assert seqs(client, "a") == [0, *range(30), 99] and set(statuses()) == {DELIVERED}  # 0 failed once


def test_plan_skips_a_tenant_whose_head_is_outside_the_window(database: pw.Database) -> None:
    head, later = add(ALERT, "a", 1), add(ALERT, "a", 2)
    other = add(ALERT, "b", 3)
    queues = plan([later, other], utcnow(), "w1", {"a": [head.id, later.id], "b": [other.id]})
    assert list(queues) == ["b"]
