"""The outbox worker: spool ingestion, then delivery cycles per datacenter, with pauses while a DC is down."""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import peewee as pw

from endpoint.config.settings import Settings
from endpoint.observability.metrics import PushMetrics
from endpoint.outbox.delivery import CycleOutcome, DatacenterCycle
from endpoint.outbox.payloads import PayloadRules
from endpoint.outbox.progress import Progress
from endpoint.outbox.settings import OutboxSettings
from endpoint.outbox.spool import Spool
from models.db import unit_of_work, utcnow
from models.outbox import PENDING, OutboxItem, truncate
from proxy.acronis import AcronisClient
from proxy.session import build_session
from proxy.transport import backoff_delay

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    ingested: int = 0
    outages: dict[str, str] = field(default_factory=dict)  # DC -> reason
    pending_due: int = 0  # still deliverable now when the pass ended (0: drained)

    def add(self, dc: str, outcome: CycleOutcome) -> None:
        self.sent += outcome.sent
        self.retried += outcome.retried
        self.dead += outcome.dead
        if outcome.outage is not None:
            self.outages[dc] = str(outcome.outage)


class Worker:
    """At-least-once delivery of the outbox; one thread, one database connection per cycle."""

    def __init__(
        self,
        settings: OutboxSettings,
        clients: Mapping[str, AcronisClient],
        *,
        batch_size: int,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
        spool: Spool | None = None,
        rng: Callable[[], float] = random.random,
        monotonic: Callable[[], float] = time.monotonic,
        metrics: PushMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.clients = dict(clients)
        self.batch_size = batch_size
        self.progress = progress or Progress(None)
        self.stop = stop or threading.Event()
        self.spool = spool
        self.rng = rng
        self.monotonic = monotonic
        self.worker = settings.worker
        self._resume_at: dict[str, float] = {}
        self._outages: dict[str, int] = {}

    def start(self) -> None:
        """Take back the leases killed earlier runs left behind: a previous run with this explicit id, or
        any dead worker process of this host (default ids are "<host>:<pid>"); others wait for expiry."""
        host = socket.gethostname()[:48]
        with unit_of_work():
            holders = [self.worker] + [h for h in OutboxItem.lease_holders() if dead_local_worker(h, host)]
            released = sum(OutboxItem.release_leases(holder) for holder in dict.fromkeys(holders))
        if released:
            log.info("outbox: %d lease(s) of earlier, stopped workers released", released)

    def run_forever(self) -> None:
        """Passes until stopped (SIGTERM/SIGINT set ``stop``); an in-flight request always completes."""
        self.start()
        while not self.stop.is_set():
            try:
                summary = self.run_once()
            except (pw.OperationalError, pw.InterfaceError) as e:
                # The database restarted or failed over, or refused a claim: the leases of this pass
                # expire on their own, so pause and go on (a fresh pooled connection next time).
                log.warning("outbox: database error (%s); next pass in %.1fs", e, self.settings.poll_interval)
                self.stop.wait(self.settings.poll_interval)
                continue
            if not (summary.pending_due and (summary.sent or summary.dead)):
                self.stop.wait(self.settings.poll_interval)
        self.progress.render(force=True)

    def run_once(self) -> RunSummary:
        """Ingest the spool, then deliver what is due on every DC that is not paused."""
        summary = RunSummary()
        if self.spool is not None:
            with unit_of_work():
                summary.ingested = self.spool.ingest().items
        with unit_of_work():
            datacenters = OutboxItem.pending_datacenters()
            self.progress.queued(self._pending_counts())
        for dc in datacenters:
            if self.stop.is_set():
                break
            if self._resume_at.get(dc, 0.0) > self.monotonic():
                continue
            client = self.clients.get(dc)
            if client is None:
                self._unconfigured(dc, summary)
                continue
            self._drain(dc, client, summary)
        with unit_of_work():
            self.progress.queued(self._pending_counts())
            summary.pending_due = self._due_count()
        self.progress.render(force=not summary.pending_due)
        return summary

    def _drain(self, dc: str, client: AcronisClient, summary: RunSummary) -> None:
        while not self.stop.is_set():
            with unit_of_work():
                outcome = DatacenterCycle(
                    dc,
                    client,
                    self.settings,
                    batch_size=self.batch_size,
                    worker=self.worker,
                    progress=self.progress,
                    stop=self.stop,
                    rng=self.rng,
                ).run()
            summary.add(dc, outcome)
            if self.metrics is not None:
                self.metrics.record_cycle(dc, outcome)
            if outcome.outage is not None:
                self._pause(dc, None)
                return
            self._outages.pop(dc, None)
            if outcome.pause:
                self._pause(dc, outcome.pause)
                return
            if outcome.stopped or not (outcome.sent or outcome.dead):
                return

    def _pause(self, dc: str, seconds: float | None) -> None:
        if seconds is None:  # an outage: exponential pause with jitter, capped
            n = self._outages[dc] = self._outages.get(dc, 0) + 1
            settings = self.settings
            seconds = backoff_delay(n, settings.backoff_base, settings.outage_backoff_max, rng=self.rng)
        self._resume_at[dc] = self.monotonic() + seconds
        log.info("outbox: %s paused for %.1fs", dc, seconds)

    def _unconfigured(self, dc: str, summary: RunSummary) -> None:
        """§1: items for a DC we hold no credentials for stay queued with a clear error; no fallback."""
        reason = f"datacenter {dc} is not configured (acronis.datacenters); items kept queued"
        with unit_of_work():
            OutboxItem.update(last_error=truncate(reason)).where(
                (OutboxItem.status == PENDING) & (OutboxItem.datacenter_url == dc)
            ).execute()
        log.error("outbox: %s", reason)
        summary.outages[dc] = reason
        self._resume_at[dc] = self.monotonic() + self.settings.outage_backoff_max

    def _pending_counts(self) -> dict[str, int]:
        return {tenant: n for (tenant, status), n in OutboxItem.counts().items() if status == PENDING}

    def _due_count(self) -> int:
        """Pending items that could be sent right now (their DC not paused, their time come)."""
        paused = [dc for dc, at in self._resume_at.items() if at > self.monotonic()]
        query = OutboxItem.select().where(
            (OutboxItem.status == PENDING) & (OutboxItem.next_attempt_at <= utcnow())
        )
        if paused:
            query = query.where(OutboxItem.datacenter_url.not_in(paused))
        return int(query.count())


def dead_local_worker(holder: str, host: str) -> bool:
    """True for a default identity ("<host>:<pid>") of this host whose process no longer exists.

    A reused pid looks alive, which only delays the takeover until the lease expires (never unsafe).
    """
    name, _, pid = holder.rpartition(":")
    if name != host or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def build_worker(
    settings: Settings,
    environ: Mapping[str, str],
    *,
    stop: threading.Event,
    progress: Progress | None = None,
    with_spool: bool = True,
    metrics: PushMetrics | None = None,
) -> Worker:
    """The composition root of ``push``: one proxy session, one client (token cache) per configured DC.

    :raise SecretNotSet: when a client secret or the proxy password variable is unset.
    """
    session = build_session(settings.proxy, environ)
    clients = {
        url: AcronisClient(session, dc, settings.acronis, wait=stop.wait)
        for url, dc in settings.acronis.resolve(environ).items()
    }
    spool = Spool(settings.outbox.spool_dir, PayloadRules.from_settings(settings)) if with_spool else None
    return Worker(
        settings.outbox,
        clients,
        batch_size=settings.acronis.batch_size,
        progress=progress,
        stop=stop,
        spool=spool,
        metrics=metrics,
    )
