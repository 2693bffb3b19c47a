"""In-process producer API: validate, then commit alerts and workloads to the outbox in one transaction.

Call inside ``models.unit_of_work()`` (or with a connection open in this thread), never on the IOLoop.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from endpoint.errors import PayloadError
from endpoint.outbox.payloads import PayloadRules, QueuedItem, TenantResolver, build_alert, build_workload
from models import db
from models.db import utcnow
from models.outbox import OutboxItem

log = logging.getLogger(__name__)


def enqueue(items: Sequence[QueuedItem]) -> list[int | None]:
    """Commit validated items atomically; an item whose ``source`` is already queued is skipped (None).

    The unique ``source`` index makes producers idempotent: a re-run after a crash adds nothing twice.
    """
    ids: list[int | None] = []
    now = utcnow()
    with db.atomic():
        for item in items:
            row = {
                "kind": item.kind,
                "tenant_id": item.tenant_id,
                "datacenter_url": item.datacenter_url,
                "payload": item.payload_json(),
                "source": item.source,
                "created_at": now,
                "next_attempt_at": now,
            }
            if item.source is None:
                ids.append(int(OutboxItem.insert(row).execute()))
                continue
            inserted = OutboxItem.insert(row).on_conflict_ignore().as_rowcount().execute()
            ids.append(_id_of(item.source) if inserted else None)
    queued = sum(1 for i in ids if i is not None)
    log.info("outbox: %d item(s) queued, %d duplicate(s) skipped", queued, len(ids) - queued)
    return ids


def enqueue_alert(alert: Mapping[str, Any], rules: PayloadRules, *, source: str | None = None) -> int | None:
    """Validate and queue one alert; returns its outbox id (None: ``source`` was queued before).

    :raise PayloadError: when the alert is invalid or its tenant is not mapped on a configured DC.
    """
    item = build_alert(alert, rules, TenantResolver(rules))
    return enqueue([_with_source(item, source)])[0]


def enqueue_workload(
    workload: Mapping[str, Any], rules: PayloadRules, *, source: str | None = None
) -> int | None:
    """Validate and queue one workload (see enqueue_alert). :raise PayloadError:"""
    item = build_workload(workload, rules, TenantResolver(rules))
    return enqueue([_with_source(item, source)])[0]


def enqueue_workloads(
    workloads: Iterable[Mapping[str, Any]], rules: PayloadRules, *, source: str | None = None
) -> list[int | None]:
    """Validate every workload first, then queue them all in one transaction (or none).

    ``source``, when given, is suffixed with each workload's position to stay unique.
    :raise PayloadError: naming the position of the first invalid workload.
    """
    resolver = TenantResolver(rules)
    items: list[QueuedItem] = []
    for position, workload in enumerate(workloads):
        try:
            item = build_workload(workload, rules, resolver)
        except PayloadError as e:
            raise PayloadError(f"workload #{position}: {e.message}") from e
        items.append(_with_source(item, None if source is None else f"{source}:{position}"))
    return enqueue(items)


def _with_source(item: QueuedItem, source: str | None) -> QueuedItem:
    if source is None:
        return item
    return QueuedItem(item.kind, item.tenant_id, item.datacenter_url, item.payload, source)


def _id_of(source: str) -> int:
    return int(OutboxItem.select(OutboxItem.id).where(OutboxItem.source == source).scalar())
