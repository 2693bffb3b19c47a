"""Delivery progress per tenant: a live table on a terminal, periodic plain log lines otherwise."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TextIO

log = logging.getLogger(__name__)


@dataclass
class TenantCounts:
    queued: int = 0  # pending in the outbox (refreshed from the database)
    sent: int = 0  # delivered by this process
    failed: int = 0  # attempts that will be retried
    dead: int = 0  # dead-lettered by this process


class Progress:
    """Counters fed by the worker; ``render()`` draws them (rate-limited unless forced)."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.tty = bool(stream is not None and (stream.isatty() if tty is None else tty))
        self.interval = interval if interval is not None else (0.25 if self.tty else 30.0)
        self.tenants: dict[str, TenantCounts] = {}
        self._clock = clock
        self._last = float("-inf")
        self._lines = 0
        self._dirty = False

    def _counts(self, tenant: str) -> TenantCounts:
        self._dirty = True
        return self.tenants.setdefault(tenant, TenantCounts())

    def queued(self, pending: Mapping[str, int]) -> None:
        for tenant in set(self.tenants) | set(pending):
            self._counts(tenant).queued = pending.get(tenant, 0)

    def sent(self, tenant: str, n: int = 1) -> None:
        self._counts(tenant).sent += n

    def failed(self, tenant: str, n: int = 1) -> None:
        self._counts(tenant).failed += n

    def dead(self, tenant: str, n: int = 1) -> None:
        self._counts(tenant).dead += n

    def totals(self) -> TenantCounts:
        total = TenantCounts()
        for c in self.tenants.values():
            total.queued += c.queued
            total.sent += c.sent
            total.failed += c.failed
            total.dead += c.dead
        return total

    def render(self, *, force: bool = False) -> None:
        now = self._clock()
        if not self._dirty or (not force and now - self._last < self.interval):
            return
        self._last, self._dirty = now, False
        if self.tty and self.stream is not None:
            self._draw(self.stream)
            return
        for tenant, c in sorted(self.tenants.items()):
            log.info(
                "outbox tenant=%s queued=%d sent=%d failed=%d dead=%d",
                tenant,
                c.queued,
                c.sent,
                c.failed,
                c.dead,
            )

    def _draw(self, stream: TextIO) -> None:
        rows = [f"{'tenant':<36}  {'queued':>7}  {'sent':>7}  {'failed':>7}  {'dead':>5}"]
        for tenant, c in sorted(self.tenants.items()):
            rows.append(f"{tenant:<36}  {c.queued:>7}  {c.sent:>7}  {c.failed:>7}  {c.dead:>5}")
        t = self.totals()
        rows.append(f"{'total':<36}  {t.queued:>7}  {t.sent:>7}  {t.failed:>7}  {t.dead:>5}")
        # Move up over the previous table and clear it, then redraw in place.
        prefix = f"\x1b[{self._lines}F\x1b[J" if self._lines else ""
        stream.write(prefix + "\n".join(rows) + "\n")
        stream.flush()
        self._lines = len(rows)
