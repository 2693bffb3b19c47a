"""The outbox table: constraints, the idempotency key, leases and the indexes behind the worker's queries."""

from __future__ import annotations

import datetime as dt
import threading
import time

import peewee as pw
import pytest

from models import ALL_MODELS, MIGRATIONS, db
from models.backends import skip_locked_supported
from models.db import unit_of_work, utcnow
from models.outbox import DEAD, DELIVERED, PENDING, OutboxItem, truncate

DC = "https://eu8-cloud.acronis.com"


def add(tenant: str = "t1", **fields: object) -> OutboxItem:
    return OutboxItem.create(
        **{"kind": "alert", "tenant_id": tenant, "datacenter_url": DC, "payload": "{}", **fields}
    )


def test_registered_and_migrated(database: pw.Database) -> None:
    assert OutboxItem in ALL_MODELS
    assert [m.version for m in MIGRATIONS][:2] == [1, 2]
    assert database.table_exists("outbox_item")


def test_defaults(database: pw.Database) -> None:
    item = add()
    assert (item.status, item.attempts, item.remote_id, item.claimed_by) == (PENDING, 0, None, None)
    assert item.next_attempt_at <= utcnow()


@pytest.mark.parametrize("fields", [{"kind": "incident"}, {"status": "lost"}])
def test_check_constraints(database: pw.Database, fields: dict[str, str]) -> None:
    # MariaDB reports a CHECK violation as OperationalError (4025); the others as IntegrityError.
    with pytest.raises((pw.IntegrityError, pw.OperationalError)), database.atomic():
        add(**fields)


def test_source_is_unique_but_optional(database: pw.Database) -> None:
    add(source=None)
    add(source=None)
    add(source="spool:abc:1")
    with pytest.raises(pw.IntegrityError), database.atomic():
        add(source="spool:abc:1")
    assert OutboxItem.select().count() == 3


def test_pending_in_is_per_dc_in_id_order(database: pw.Database) -> None:
    a, b = add("t1"), add("t2")
    add("t1", status=DELIVERED)
    add("t1", datacenter_url="https://us5-cloud.acronis.com")
    assert [i.id for i in OutboxItem.pending_in(DC, 10)] == [a.id, b.id]
    assert OutboxItem.pending_in(DC, 1)[0].id == a.id
    assert OutboxItem.pending_datacenters() == [DC, "https://us5-cloud.acronis.com"]


def test_claim_respects_live_leases_and_release(database: pw.Database) -> None:
    now = utcnow()
    later = now + dt.timedelta(minutes=5)
    mine, theirs, stale = add(), add(), add()
    OutboxItem.update(claimed_by="w2", lease_expires=later).where(OutboxItem.id == theirs.id).execute()
    OutboxItem.update(claimed_by="w3", lease_expires=now - dt.timedelta(seconds=1)).where(
        OutboxItem.id == stale.id
    ).execute()
    assert OutboxItem.claim([mine.id, theirs.id, stale.id], "w1", now, later) == 2
    assert OutboxItem.get_by_id(theirs.id).claimed_by == "w2"
    assert OutboxItem.get_by_id(stale.id).claimed_by == "w1"
    assert OutboxItem.release_leases("w1") == 2
    assert OutboxItem.get_by_id(mine.id).lease_expires is None


def test_counts_by_tenant_and_status(database: pw.Database) -> None:
    add("t1"), add("t1"), add("t1", status=DEAD), add("t2", status=DELIVERED)
    assert OutboxItem.counts() == {("t1", PENDING): 2, ("t1", DEAD): 1, ("t2", DELIVERED): 1}


def test_claim_query_uses_the_index(database: pw.Database) -> None:
    if not database.__class__.__name__.endswith("SqliteDatabase"):
        pytest.skip("query plan check is SQLite-specific")
    add()
    sql, params = (
        OutboxItem.select()
        .where((OutboxItem.status == PENDING) & (OutboxItem.datacenter_url == DC))
        .order_by(OutboxItem.id)
        .limit(5)
        .sql()
    )
    plan = " ".join(str(row) for row in database.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall())
    assert "USING INDEX" in plan and "TEMP B-TREE" not in plan


def test_pending_ids_per_tenant_in_order_whatever_their_lease_or_due_time(database: pw.Database) -> None:
    later = utcnow() + dt.timedelta(minutes=5)
    t1 = [
        add("t1").id,
        add("t1", next_attempt_at=later).id,
        add("t1", claimed_by="w2", lease_expires=later).id,
    ]
    add("t1", status=DELIVERED)
    t2 = add("t2").id
    add("t2", datacenter_url="https://other-dc.example")
    beyond = add("t1").id
    assert OutboxItem.pending_ids(DC, ["t1", "t2"], beyond - 1) == {"t1": t1, "t2": [t2]}
    assert OutboxItem.pending_ids(DC, ["t2"], beyond) == {"t2": [t2]}


def test_skip_locked_leaves_out_the_rows_another_claim_holds(database: pw.Database) -> None:
    if not skip_locked_supported(database):
        pytest.skip("no row locks (SQLite): claims serialize on the writer lock and the lease conditions")
    ids = [add(f"t{n}").id for n in range(6)]
    database.close()
    holding, release, held = threading.Event(), threading.Event(), []

    def other_worker() -> None:  # its own connection, its claim transaction still open
        with unit_of_work(), db.atomic():
            held.extend(i.id for i in OutboxItem.pending_in(DC, 2, skip_locked=True))
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert holding.wait(5)
        started = time.monotonic()
        with unit_of_work(), db.atomic():
            mine = [i.id for i in OutboxItem.pending_in(DC, 10, skip_locked=True)]
        assert time.monotonic() - started < 1  # it did not queue behind the other transaction
    finally:
        release.set()
        thread.join(5)
    assert held == ids[:2] and mine == ids[2:]


def test_truncate() -> None:
    assert truncate("short") == "short"
    assert len(truncate("x" * 5000)) == 1000 and truncate("x" * 5000).endswith("…")
