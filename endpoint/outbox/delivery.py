"""One delivery cycle for one datacenter: per-tenant order, batched workloads, bisected rejects, backoff."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from endpoint.outbox.progress import Progress
from endpoint.outbox.settings import OutboxSettings
from models.backends import skip_locked_supported
from models.db import db, utcnow
from models.outbox import ALERT, DEAD, DELIVERED, WORKLOAD, OutboxItem, truncate
from proxy.acronis import AcronisClient
from proxy.errors import ApiRejected, ApiUnavailable, ConnectorError, Interrupted, TransportTimeout
from proxy.transport import backoff_delay

log = logging.getLogger(__name__)

BISECT_STATUSES = frozenset({400, 413, 422})  # item-level rejections; other 4xx condemn the whole request


@dataclass
class CycleOutcome:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    outage: ConnectorError | None = None  # the DC is unusable right now: pause it, charge no attempts
    pause: float = 0.0  # the API asked us to slow down (429 Retry-After)
    stopped: bool = False
    tenants: set[str] = field(default_factory=set)


class _Halt(Exception):
    """Ends the cycle early; the outcome already says why."""


def plan(
    items: list[OutboxItem], now: dt.datetime, worker: str, pending: dict[str, list[int]] | None = None
) -> dict[str, deque[OutboxItem]]:
    """Per-tenant queues of what may be sent now, in id order.

    A tenant's queue stops at its first item that is not due or is leased by another live worker, and,
    given each tenant's ``pending`` ids in order, at the first item that is not the next of those: an
    earlier item this list lacks (another worker's claim holds it; SKIP LOCKED hid it) must go first.
    Nothing ever overtakes an earlier item of the same tenant.
    """
    queues: dict[str, deque[OutboxItem]] = {}
    closed: set[str] = set()
    expected = {tenant: iter(ids) for tenant, ids in (pending or {}).items()}
    for item in items:
        tenant = item.tenant_id
        if tenant in closed:
            continue
        if pending is not None and next(expected.get(tenant, iter(())), None) != item.id:
            closed.add(tenant)
            continue
        foreign = (
            item.claimed_by not in (None, worker)
            and item.lease_expires is not None
            and (item.lease_expires > now)
        )
        if foreign or item.next_attempt_at > now:
            closed.add(tenant)
            continue
        queues.setdefault(tenant, deque()).append(item)
    return queues


def classify(error: ConnectorError) -> str:
    """rejected (dead-letter) | transient (attempt charged, backoff) | stop | outage (pause the DC)."""
    if isinstance(error, ApiRejected):
        return "rejected"
    if isinstance(error, ApiUnavailable | TransportTimeout):
        return "transient"
    if isinstance(error, Interrupted):
        return "stop"
    return "outage"  # ProxyFailure, TransportError, AuthFailure, ConnectorConfigError


class DatacenterCycle:
    """Delivers what is due for one DC, once. Runs in one thread with a database connection open."""

    def __init__(
        self,
        datacenter_url: str,
        client: AcronisClient,
        settings: OutboxSettings,
        *,
        batch_size: int,
        worker: str,
        progress: Progress,
        stop: threading.Event,
        rng: Callable[[], float] = random.random,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.dc = datacenter_url
        self.client = client
        self.settings = settings
        self.batch_size = batch_size
        self.worker = worker
        self.progress = progress
        self.stop = stop
        self.rng = rng
        self.now = now
        self.blocked: set[str] = set()
        self.outcome = CycleOutcome()

    def run(self) -> CycleOutcome:
        now = self.now()
        until = now + dt.timedelta(seconds=self.settings.lease_seconds)
        with db.atomic():
            # With row locks (PostgreSQL, MySQL 8, MariaDB 10.6) concurrent workers skip the rows another
            # one is claiming instead of queueing behind it; SQLite has one writer, and everywhere the
            # lease conditions in claim() decide who owns an item.
            skip_locked = skip_locked_supported(db.obj)
            limit = self.settings.claim_limit
            items = self._expire(OutboxItem.pending_in(self.dc, limit, now, skip_locked=skip_locked), now)
            tenants = sorted({item.tenant_id for item in items})
            pending = OutboxItem.pending_ids(self.dc, tenants, max((i.id for i in items), default=0))
            queues = plan(items, now, self.worker, pending)
            ids = [item.id for queue in queues.values() for item in queue]
            if ids:
                OutboxItem.claim(ids, self.worker, now, until)
        if not ids:
            return self.outcome
        mine = OutboxItem.select(OutboxItem.id).where(
            OutboxItem.id.in_(ids) & (OutboxItem.claimed_by == self.worker)
        )
        owned = {row.id for row in mine}
        deadline = until - dt.timedelta(seconds=self.settings.lease_seconds / 10)
        try:
            self._deliver(_owned_prefixes(queues, owned), deadline)
        except _Halt:
            pass
        finally:
            OutboxItem.release_leases(self.worker)
        return self.outcome

    def _deliver(self, queues: dict[str, deque[OutboxItem]], deadline: dt.datetime) -> None:
        while queues and self.now() < deadline:
            batch: list[OutboxItem] = []
            for queue in queues.values():
                while queue and queue[0].kind == WORKLOAD and len(batch) < self.batch_size:
                    batch.append(queue.popleft())
            if batch:
                self._send_batch(batch)
            for tenant, queue in queues.items():
                if queue and queue[0].kind == ALERT and tenant not in self.blocked:
                    self._send_alert(queue.popleft())
            queues = {t: q for t, q in queues.items() if q and t not in self.blocked}

    def _send_alert(self, item: OutboxItem) -> None:
        self._check_stop()
        try:
            remote_id = self.client.post_alert(json.loads(item.payload), label=f"outbox item {item.id}")
        except ConnectorError as e:
            self._failed([item], e)
            return
        self._delivered([item], remote_id or None)

    def _send_batch(self, items: list[OutboxItem]) -> None:
        items = [item for item in items if item.tenant_id not in self.blocked]
        if not items:
            return
        self._check_stop()
        label = f"outbox items {items[0].id}..{items[-1].id} ({len(items)})"
        try:
            self.client.post_workloads([json.loads(item.payload) for item in items], label=label)
        except ApiRejected as e:
            if len(items) > 1 and e.status in BISECT_STATUSES:
                log.info("%s: batch rejected (%d); bisecting %s", self.dc, e.status, label)
                middle = len(items) // 2
                self._send_batch(items[:middle])
                self._send_batch(items[middle:])
                return
            self._failed(items, e)
        except ConnectorError as e:
            self._failed(items, e)
        else:
            self._delivered(items, None)

    def _check_stop(self) -> None:
        if self.stop.is_set():
            self.outcome.stopped = True
            raise _Halt

    def _delivered(self, items: list[OutboxItem], remote_id: str | None) -> None:
        OutboxItem.update(
            status=DELIVERED,
            delivered_at=self.now(),
            remote_id=remote_id,
            attempts=OutboxItem.attempts + 1,
            last_error=None,
            claimed_by=None,
            lease_expires=None,
        ).where(OutboxItem.id.in_([item.id for item in items])).execute()
        self.outcome.sent += len(items)
        for item in items:
            self.outcome.tenants.add(item.tenant_id)
            self.progress.sent(item.tenant_id)
            log.debug("outbox item %d delivered to %s", item.id, self.dc)
        self.progress.render()  # rate-limited: a live table on a terminal, a periodic line otherwise

    def _failed(self, items: list[OutboxItem], error: ConnectorError) -> None:
        kind = classify(error)
        text = truncate(
            f"{type(error).__name__}: {error}"
            + (f" | {getattr(error, 'body', '')}" if getattr(error, "body", "") else "")
        )
        if kind == "stop":
            self.outcome.stopped = True
            raise _Halt
        if kind == "outage":
            # Not the items' fault (proxy down, credentials refused...): note it, charge no attempt.
            OutboxItem.update(last_error=text).where(OutboxItem.id.in_([i.id for i in items])).execute()
            log.warning("%s: delivery paused: %s", self.dc, error)
            self.outcome.outage = error
            raise _Halt
        for item in items:
            attempts = item.attempts + 1
            if kind == "rejected" or attempts >= self.settings.max_attempts:
                self._dead(item, attempts, text)
                continue
            delay = self.backoff(attempts, getattr(error, "retry_after", None))
            until = self.now() + dt.timedelta(seconds=delay)
            OutboxItem.update(
                attempts=attempts, last_error=text, next_attempt_at=until, claimed_by=None, lease_expires=None
            ).where(OutboxItem.id == item.id).execute()
            if item.tenant_id not in self.blocked:
                OutboxItem.defer_tenant(self.dc, item.tenant_id, item.id, until)
            self.blocked.add(item.tenant_id)
            self.outcome.retried += 1
            self.progress.failed(item.tenant_id)
            log.info("outbox item %d: attempt %d failed (%s); next in %.1fs", item.id, attempts, error, delay)
        if isinstance(error, ApiUnavailable) and error.status == 429:
            self.outcome.pause = error.retry_after or self.backoff(1, None)
            raise _Halt

    def _dead(self, item: OutboxItem, attempts: int, text: str) -> None:
        OutboxItem.update(
            status=DEAD, attempts=attempts, last_error=text, claimed_by=None, lease_expires=None
        ).where(OutboxItem.id == item.id).execute()
        self.outcome.dead += 1
        self.progress.dead(item.tenant_id)
        log.warning(
            "outbox item %d (%s, tenant %s) dead-lettered: %s", item.id, item.kind, item.tenant_id, text
        )

    def backoff(self, attempts: int, retry_after: float | None) -> float:
        """Exponential backoff with equal jitter; a Retry-After (already capped) is a floor."""
        settings = self.settings
        return backoff_delay(
            attempts, settings.backoff_base, settings.backoff_max, floor=retry_after, rng=self.rng
        )

    def _expire(self, items: list[OutboxItem], now: dt.datetime) -> list[OutboxItem]:
        oldest = now - dt.timedelta(seconds=self.settings.max_age)
        fresh = []
        for item in items:
            if item.created_at < oldest and item.claimed_by in (None, self.worker):
                self._dead(
                    item,
                    item.attempts,
                    truncate(
                        f"expired: not delivered within max_age; last error: {item.last_error or 'none'}"
                    ),
                )
            else:
                fresh.append(item)
        return fresh


def _owned_prefixes(queues: dict[str, deque[OutboxItem]], owned: set[int]) -> dict[str, deque[OutboxItem]]:
    """Cut each tenant's queue at the first item another worker leased in the meantime."""
    result: dict[str, deque[OutboxItem]] = {}
    for tenant, queue in queues.items():
        prefix: deque[OutboxItem] = deque()
        for item in queue:
            if item.id not in owned:
                break
            prefix.append(item)
        if prefix:
            result[tenant] = prefix
    return result
