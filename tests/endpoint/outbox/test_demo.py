"""The demo generator: deterministic per seed, valid, idempotent when queued twice."""

from __future__ import annotations

from endpoint.outbox.demo import demo_records, enqueue_demo, mapped_tenants
from endpoint.outbox.payloads import PayloadRules, TenantResolver, build_item
from models.outbox import OutboxItem
from tests.endpoint.outbox.conftest import APP, TENANTS


def test_same_seed_same_records() -> None:
    assert demo_records(7, 30, TENANTS, APP) == demo_records(7, 30, TENANTS, APP)
    assert demo_records(7, 30, TENANTS, APP) != demo_records(8, 30, TENANTS, APP)
    assert demo_records(7, 10, TENANTS, APP) == demo_records(7, 30, TENANTS, APP)[:10]
    assert demo_records(7, 10, (), APP) == []
    kinds = {r["kind"] for r in demo_records(1, 40, TENANTS, APP)}
    assert kinds == {"alert", "workload"}


def test_demo_records_pass_validation_and_queue_once(rules: PayloadRules) -> None:
    assert mapped_tenants(rules) == sorted(TENANTS)
    resolver = TenantResolver(rules)
    for record in demo_records(3, 25, TENANTS, APP):
        build_item(record, rules, resolver)
    assert enqueue_demo(3, 25, rules) == 25
    assert enqueue_demo(3, 25, rules) == 0
    assert enqueue_demo(3, 30, rules) == 5
    assert OutboxItem.select().count() == 30
