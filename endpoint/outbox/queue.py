"""The outbox's one way in: commit validated alerts and workloads in one transaction, idempotent by source.

Call inside ``models.unit_of_work()`` (or with a connection open in this thread), never on the IOLoop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from endpoint.outbox.payloads import QueuedItem
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


def _id_of(source: str) -> int:
    return int(OutboxItem.select(OutboxItem.id).where(OutboxItem.source == source).scalar())
