"""The in-process producer API: validated, committed in one transaction, idempotent by source."""

from __future__ import annotations

import json

import pytest

from endpoint.errors import PayloadError
from endpoint.outbox.payloads import PayloadRules
from models.outbox import PENDING, OutboxItem
from tests.endpoint.outbox.conftest import TENANTS, alert, workload
from tests.endpoint.outbox.produce import enqueue_alert, enqueue_workload, enqueue_workloads


def test_alert_is_committed_pending(rules: PayloadRules) -> None:
    item_id = enqueue_alert(alert(TENANTS[0], 1), rules)
    row = OutboxItem.get_by_id(item_id)
    assert (row.kind, row.status, row.attempts, row.tenant_id) == ("alert", PENDING, 0, TENANTS[0])
    assert json.loads(row.payload)["details"]["fields"] == {"Seq": "1"}


def test_invalid_input_is_never_queued(rules: PayloadRules) -> None:
    with pytest.raises(PayloadError):
        enqueue_alert(alert(TENANTS[0], tenant_id=TENANTS[0]), rules)
    with pytest.raises(PayloadError, match="workload #2"):
        enqueue_workloads(
            [workload(TENANTS[0], 0), workload(TENANTS[1], 1), workload(TENANTS[0], enabled=1)], rules
        )
    assert OutboxItem.select().count() == 0


def test_a_batch_of_workloads_is_one_transaction_and_idempotent_by_source(rules: PayloadRules) -> None:
    ids = enqueue_workloads([workload(TENANTS[0], n) for n in range(3)], rules, source="inventory-42")
    assert None not in ids and ids == sorted(ids)
    again = enqueue_workloads([workload(TENANTS[0], n) for n in range(3)], rules, source="inventory-42")
    assert again == [None, None, None]
    assert enqueue_workload(workload(TENANTS[1]), rules, source="single") is not None
    assert enqueue_workload(workload(TENANTS[1]), rules, source="single") is None
    assert OutboxItem.select().count() == 4
