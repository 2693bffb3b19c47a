"""Producing outbox items from Python in tests: validate with the payload rules, then ``enqueue``.

Production producers go through the spool (endpoint/outbox/spool.py) or ``connector outbox demo``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from endpoint.errors import PayloadError
from endpoint.outbox.payloads import PayloadRules, QueuedItem, TenantResolver, build_alert, build_workload
from endpoint.outbox.queue import enqueue


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
