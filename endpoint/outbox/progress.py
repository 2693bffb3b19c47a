"""Delivery progress per tenant: a live table on a terminal, plain log lines otherwise.

Plain mode (systemd, `--progress plain`) writes a tenant's line only when its counts changed since the
last line written for it: an idle worker polling every second stays silent instead of repeating itself
(~43,000 identical lines a day). The table shows what is still to do (``remaining``), the delivery rate
over the last minute and the time left at that rate.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import astuple, dataclass
from typing import TextIO

log = logging.getLogger(__name__)

RATE_WINDOW = 60.0  # seconds of deliveries the rate is measured over


@dataclass
class TenantCounts:
    queued: int = 0  # still pending in the outbox (refreshed from the database): what remains to deliver
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
        self._logged: dict[str, tuple[int, ...]] = {}  # plain mode: the counts last written per tenant
        self._deliveries: deque[tuple[float, int]] = deque()  # (time, how many) within RATE_WINDOW

    def _counts(self, tenant: str) -> TenantCounts:
        return self.tenants.setdefault(tenant, TenantCounts())

    def queued(self, pending: Mapping[str, int]) -> None:
        for tenant in set(self.tenants) | set(pending):
            self._counts(tenant).queued = pending.get(tenant, 0)

    def sent(self, tenant: str, n: int = 1) -> None:
        self._counts(tenant).sent += n
        self._deliveries.append((self._clock(), n))

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

    def rate(self) -> float:
        """Deliveries per minute over the last RATE_WINDOW seconds."""
        now = self._clock()
        while self._deliveries and now - self._deliveries[0][0] > RATE_WINDOW:
            self._deliveries.popleft()
        if not self._deliveries:
            return 0.0
        span = max(now - self._deliveries[0][0], 1.0)
        return sum(n for _, n in self._deliveries) * 60.0 / span

    def render(self, *, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        if self.tty and self.stream is not None:
            self._draw(self.stream)
            return
        for tenant, c in sorted(self.tenants.items()):
            counts = astuple(c)
            if self._logged.get(tenant) == counts:
                continue  # nothing new for this tenant: no line
            self._logged[tenant] = counts
            log.info(
                "outbox tenant=%s remaining=%d sent=%d failed=%d dead=%d",
                tenant,
                c.queued,
                c.sent,
                c.failed,
                c.dead,
            )

    def _draw(self, stream: TextIO) -> None:
        header = f"{'tenant':<36}  {'remaining':>9}  {'sent':>7}  {'failed':>7}  {'dead':>5}"
        rows = [header]
        for tenant, c in sorted(self.tenants.items()):
            rows.append(f"{tenant:<36}  {c.queued:>9}  {c.sent:>7}  {c.failed:>7}  {c.dead:>5}")
        t = self.totals()
        rows.append(f"{'total':<36}  {t.queued:>9}  {t.sent:>7}  {t.failed:>7}  {t.dead:>5}")
        rows.append(f"{_rate_line(self.rate(), t.queued)}")
        # Move up over the previous table and clear it, then redraw in place.
        prefix = f"\x1b[{self._lines}F\x1b[J" if self._lines else ""
        stream.write(prefix + "\n".join(rows) + "\n")
        stream.flush()
        self._lines = len(rows)


def _rate_line(per_minute: float, remaining: int) -> str:
    if remaining == 0:
        return f"rate {per_minute:.0f}/min; nothing remaining"
    if per_minute <= 0:
        return "rate 0/min; time left unknown (nothing delivered in the last minute)"
    seconds = remaining * 60.0 / per_minute
    return f"rate {per_minute:.0f}/min; about {_duration(seconds)} left at this rate"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
