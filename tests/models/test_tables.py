"""Constraints and query helpers of the core tables."""

from __future__ import annotations

import peewee as pw
import pytest
from playhouse.test_utils import count_queries

from models import Nonce, Organization, OrganizationMapping, User
from tests.support.builders import create_customer, create_org, create_user, map_org


def test_subtree_is_anchored_and_reaches_any_depth(database: pw.Database) -> None:
    root = create_org("Root")
    sub = create_org("Sub", parent=root)
    deep = create_customer("Deep", parent=create_org("SubSub", parent=sub))
    near = create_customer("Near", parent=root)
    other = create_customer("Other", parent=create_org("Other partner"))
    with count_queries() as counter:
        ids = {o.id for o in Organization.subtree(root.id)}
    assert counter.count == 1
    assert deep.id in ids and near.id in ids and sub.id in ids
    assert root.id not in ids and other.id not in ids
    assert [c.name for c in Organization.customers_of(root.id)] == ["Deep", "Near"]


def test_logins_are_unique_after_normalization(database: pw.Database) -> None:
    org = create_org("P")
    create_user("Alice", org)
    with pytest.raises(pw.IntegrityError):
        create_user("ALICE", org)


def test_mapping_is_unique_on_both_sides(database: pw.Database) -> None:
    a, b = create_org("A"), create_org("B")
    map_org(a, "0dd47bbb-d065-447f-ab7c-06e05887078b")
    with pytest.raises(pw.IntegrityError):
        map_org(b, "0dd47bbb-d065-447f-ab7c-06e05887078b")
    with pytest.raises(pw.IntegrityError), database.atomic():
        map_org(a, "954ef80f-5acb-405b-81df-e850606b406d")
    assert OrganizationMapping.select().count() == 1


def test_nonce_record_is_insert_if_absent(database: pw.Database) -> None:
    assert Nonce.record("key-1", "n" * 16, 1_700_000_000) is True
    assert Nonce.record("key-1", "n" * 16, 1_700_000_100) is False  # same nonce, other timestamp
    assert Nonce.record("key-2", "n" * 16, 1_700_000_000) is True  # scoped per consumer
    assert Nonce.purge(older_than=1_700_000_050) == 2
    assert Nonce.select().count() == 0


def test_users_by_organization_uses_an_index(database: pw.Database) -> None:
    org = create_org("P")
    create_user("u1", org)
    plan = (
        database.execute_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM user WHERE organization_id = ? ORDER BY name, id", (org.id,)
        ).fetchall()
        if database.__class__.__name__.endswith("SqliteDatabase")
        else []
    )
    if plan:
        assert "USING INDEX" in " ".join(str(row) for row in plan) or "COVERING" in str(plan)
    assert User.select().where(User.organization == org).count() == 1


def test_concurrent_nonce_inserts_accept_exactly_one(database: pw.Database) -> None:
    """200 inserts of one nonce from 8 threads, each on its own pooled connection: exactly one wins."""
    import threading

    from models.db import unit_of_work

    results: list[bool] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(25):
            with unit_of_work():
                results.append(Nonce.record("race-key", "the-same-nonce", 1_700_000_000))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1 and len(results) == 200
