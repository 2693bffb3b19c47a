"""Prometheus metrics (prometheus_client): what the serving processes and the outbox worker count.

prometheus_client is imported inside the builders, never at module import: in multiprocess mode (serve
with ``--workers``) its value class is chosen from PROMETHEUS_MULTIPROC_DIR, which ``enable_multiprocess``
sets in the parent before the workers fork. Each worker then writes its own files and the worker that
serves ``/metrics`` (the first) sums them (MultiProcessCollector). Gauges derived from the database
(outbox depth, APS jobs) are set by that worker alone and exported as ``livemax``; per-process gauges
(pending argon2 verifications, nonce claims) as ``livesum``.

Nothing here is reachable through the inbound proxy: the listener is separate (``metrics.host`` /
``metrics.port``, loopback by default).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from endpoint.observability.logsetup import rejection_key

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MAX_REASONS = 100  # distinct rejection reasons per process; more are counted as "other"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """The operations listener of `serve` (/metrics, /healthz) and the outbox worker's /metrics."""

    host: str = "127.0.0.1"  # the ops listener's address: keep it off the public interface
    port: int | None = None  # `serve`'s /metrics and /healthz; off when unset (0: any free port)
    push_port: int | None = None  # the outbox worker's (`push`) /metrics; off when unset

    def __post_init__(self) -> None:
        for name in ("port", "push_port"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 65535:
                raise ValueError(f"{name}: must be 0..65535")
        if self.port is not None and self.port == self.push_port and self.port != 0:
            raise ValueError("push_port: must differ from port (two processes cannot share it)")


def enable_multiprocess(directory: str) -> None:
    """Before forking workers: every metric created from now on writes its values under ``directory``."""
    os.environ[MULTIPROC_ENV] = directory
    from prometheus_client import values

    values.ValueClass = values.get_value_class()  # in case prometheus_client was imported already


def mark_process_dead(pid: int) -> None:
    """A worker exited: drop its live gauges (counters and histograms keep counting)."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, directory)


class _Instruments:
    """A registry and an exposition; subclasses declare their metrics in ``_declare``."""

    def __init__(self) -> None:
        import prometheus_client as prom

        directory = os.environ.get(MULTIPROC_ENV)
        self._prom = prom
        self.exposition = prom.CollectorRegistry()
        if directory:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(self.exposition, path=directory)
            registry = None  # values live in the files; registering them too would export them twice
        else:
            registry = self.exposition
        self._declare(prom, registry)

    def _declare(self, prom: Any, registry: Any) -> None:
        raise NotImplementedError

    def render(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        return self._prom.generate_latest(self.exposition), self._prom.CONTENT_TYPE_LATEST


class ServeMetrics(_Instruments):
    """Requests, rejections and latency per route; the auth path's state; database-derived gauges."""

    def _declare(self, prom: Any, registry: Any) -> None:
        self.requests = prom.Counter(
            "connector_http_requests_total", "Requests answered", ["route", "status"], registry=registry
        )
        self.rejections = prom.Counter(
            "connector_http_rejections_total",
            "4xx answers by reason (numbers and quoted values folded)",
            ["route", "status", "reason"],
            registry=registry,
        )
        self.latency = prom.Histogram(
            "connector_http_request_duration_seconds",
            "Time from the request's start to its answer",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.credential_cache = prom.Counter(
            "connector_credential_cache_lookups_total",
            "End-user credential checks answered by the cache (hit) or by argon2 (miss)",
            ["result"],
            registry=registry,
        )
        self.argon2_pending = prom.Gauge(
            "connector_argon2_pending",
            "argon2 verifications queued or running",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.nonce_claims = prom.Gauge(
            "connector_nonce_claims",
            "Nonces held by the in-process replay claim table",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.jwks_age = prom.Gauge(
            "connector_jwks_age_seconds",
            "Seconds since the gateway's keys were last fetched (-1: never)",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.outbox_items = prom.Gauge(
            "connector_outbox_items",
            "Outbox items by data center and state (from the database)",
            ["datacenter", "state"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.outbox_oldest = prom.Gauge(
            "connector_outbox_oldest_pending_seconds",
            "Age of the oldest pending outbox item per data center",
            ["datacenter"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.aps_jobs = prom.Gauge(
            "connector_aps_jobs",
            "APS jobs by state (from the database)",
            ["state"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self._reasons: set[str] = set()
        self._datacenters: set[str] = set()

    def sample(self, *, argon2_pending: int, nonce_claims: int, jwks_age: float | None) -> None:
        """The in-process gauges (a periodic callback; a scrape must not reach into the request path)."""
        self.argon2_pending.set(argon2_pending)
        self.nonce_claims.set(nonce_claims)
        self.jwks_age.set(-1 if jwks_age is None else jwks_age)

    def sample_database(self) -> None:
        """The database-derived gauges (a database thread, in a unit of work; one worker only)."""
        import peewee as pw

        from models import ApsJob
        from models.db import utcnow
        from models.outbox import DEAD, DELIVERED, PENDING, OutboxItem

        now = utcnow()
        rows = OutboxItem.select(OutboxItem.datacenter_url, OutboxItem.status, pw.fn.COUNT(OutboxItem.id))
        counts = {
            (dc, state): n
            for dc, state, n in rows.group_by(OutboxItem.datacenter_url, OutboxItem.status).tuples()
        }
        self._datacenters.update(dc for dc, _ in counts)
        for dc in self._datacenters:  # a state with no row is 0, never the value of an earlier sample
            for state in (PENDING, DELIVERED, DEAD):
                self.outbox_items.labels(dc, state).set(counts.get((dc, state), 0))
        oldest = (
            OutboxItem.select(OutboxItem.datacenter_url, pw.fn.MIN(OutboxItem.created_at))
            .where(OutboxItem.status == PENDING)
            .group_by(OutboxItem.datacenter_url)
            .tuples()
        )
        ages = {dc: (now - created).total_seconds() for dc, created in oldest if created is not None}
        for dc in self._datacenters:
            self.outbox_oldest.labels(dc).set(max(0.0, ages.get(dc, 0.0)))
        jobs = dict(ApsJob.select(ApsJob.state, pw.fn.COUNT(ApsJob.id)).group_by(ApsJob.state).tuples())
        for state in ("pending", "running", "done", "failed"):
            self.aps_jobs.labels(state).set(jobs.get(state, 0))

    def observe(self, route: str, status: int, seconds: float, reason: str | None) -> None:
        """One answered request (called with the access line)."""
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if 400 <= status < 500:
            key = rejection_key(reason or "")
            if key not in self._reasons:
                if len(self._reasons) >= MAX_REASONS:
                    key = "other"
                else:
                    self._reasons.add(key)
            self.rejections.labels(route, str(status), key).inc()


class PushMetrics(_Instruments):
    """The outbox worker: deliveries, retries, dead letters per data center, and whether the proxy works."""

    def record_cycle(self, datacenter: str, outcome: Any) -> None:
        """One delivery cycle's outcome (endpoint/outbox/delivery.py CycleOutcome)."""
        from proxy.errors import ProxyFailure

        for result, count in (("sent", outcome.sent), ("retried", outcome.retried), ("dead", outcome.dead)):
            if count:
                self.deliveries.labels(datacenter, result).inc(count)
        self.proxy_up.set(0 if isinstance(outcome.outage, ProxyFailure) else 1)

    def _declare(self, prom: Any, registry: Any) -> None:
        self.deliveries = prom.Counter(
            "connector_outbox_deliveries_total",
            "Outbox items delivered, retried later or dead-lettered",
            ["datacenter", "result"],
            registry=registry,
        )
        self.proxy_up = prom.Gauge(
            "connector_proxy_up",
            "1 when the last delivery cycle got through the outbound proxy, 0 when the proxy failed it",
            registry=registry,
        )
