"""Running jobs: the executor (claim -> outbound step -> effect + answer) and the background runner.

Both are plain threads' work: each database step opens its own unit of work and closes it before any
network call, and nothing here runs on the IOLoop. The runner lives in the serving process; after a
restart it finds pending jobs (and running ones whose lease ran out) and resumes them.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import peewee as pw

from endpoint.aps import jobs
from endpoint.aps.jobs import JobView, Ticket
from endpoint.aps.operations import OPERATIONS
from endpoint.aps.outbound import Outbound
from endpoint.aps.settings import ApsSettings
from endpoint.errors import ServiceError, public_message
from endpoint.work.executors import database_unavailable
from models import db
from models.db import unit_of_work, utcnow
from proxy.controller import ControllerClient
from proxy.errors import ApiError, ConnectorConfigError, ConnectorError, ProxyFailure
from proxy.transport import backoff_delay

log = logging.getLogger(__name__)

PURGE_EVERY = 3600.0
MAX_FAILURE_BACKOFF = 30.0  # seconds between cycles at most while they keep failing


def public_reason(error: ConnectorError) -> str:
    """What the controller may read about an outbound failure (APS-Info, job error): no hosts, no URLs."""
    if isinstance(error, ConnectorConfigError):
        return "The connector's outbound configuration is incomplete."
    if isinstance(error, ProxyFailure):
        return f"The outbound proxy failed ({error.cause})."
    if isinstance(error, ApiError):
        return f"The controller answered {error.status}."
    return "The controller could not be reached."


class JobExecutor:
    """Runs one job to its next state. Safe to call from several threads: claims are atomic."""

    def __init__(
        self, settings: ApsSettings, outbound: Outbound, rng: Callable[[], float] = random.random
    ) -> None:
        self.settings = settings
        self.outbound = outbound
        self._rng = rng

    def run(self, job_id: int, *, raise_domain_errors: bool = False) -> JobView | None:
        """Claim ``job_id`` if it is due and run it; returns the job as it is afterwards.

        :raise ServiceError: only with ``raise_domain_errors`` (the sync phase answers it as a 4xx).
        :raise Unavailable: the database cannot be reached (a 503 for the sync phase, not a 500); a job
            claimed by then is resumed once its lease runs out.
        """
        try:
            with unit_of_work():
                ticket = jobs.claim(job_id, self.settings.job_lease)
            if ticket is not None:
                self.execute(ticket, raise_domain_errors=raise_domain_errors)
            with unit_of_work():
                return jobs.view(job_id)
        except pw.PeeweeException as e:
            unavailable = database_unavailable(e)
            if unavailable is None:
                raise
            raise unavailable from e

    def execute(self, ticket: Ticket, *, raise_domain_errors: bool = False) -> None:
        operation = OPERATIONS.get(ticket.operation)
        extra = ticket.log_extra
        try:
            if operation is None:
                raise ServiceError("Unknown operation.", reason=f"no operation {ticket.operation!r}")
            prepared = (
                operation.prepare(ticket, lambda: self._controller(ticket)) if operation.prepare else None
            )
            with unit_of_work(), db.atomic():
                outcome = operation.apply(ticket, prepared)
                jobs.complete(ticket, outcome)
            log.info("job %s done (attempt %d)", ticket.aps_id, ticket.attempt, extra=extra)
        except ServiceError as e:
            log.info("job %s failed: %s", ticket.aps_id, e.reason, extra=extra)
            with unit_of_work():
                jobs.fail(ticket, e.message)
            if raise_domain_errors:
                raise
        except ConnectorError as e:
            log.warning("job %s attempt %d: %s", ticket.aps_id, ticket.attempt, e, extra=extra)
            with unit_of_work():
                jobs.retry_later(ticket, public_reason(e), self.settings, self._rng)
        except Exception as e:
            if database_unavailable(e) is not None:  # the database went away under the job: transient
                log.warning(
                    "job %s attempt %d: %s", ticket.aps_id, ticket.attempt, _first_line(e), extra=extra
                )
                reason = public_message(503)
            else:
                log.exception(
                    "job %s attempt %d: unexpected error", ticket.aps_id, ticket.attempt, extra=extra
                )
                reason = public_message(500)
            with unit_of_work():  # still down: this raises, and the job is resumed when its lease ends
                jobs.retry_later(ticket, reason, self.settings, self._rng)

    def _controller(self, ticket: Ticket) -> ControllerClient:
        if not ticket.controller_uri or ticket.secret is None:
            raise ConnectorConfigError(f"instance {ticket.instance_id}: no controller URI or active secret")
        return self.outbound.controller(ticket.controller_uri, ticket.consumer_key, ticket.secret)


class JobRunner:
    """A thread that hands due jobs to the outbound pool, woken early by ``wake()``."""

    def __init__(self, settings: ApsSettings, executor: JobExecutor, outbound: Outbound) -> None:
        self.settings = settings
        self.executor = executor
        self._pool = outbound.executor
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._in_flight: set[int] = set()
        self._lock = threading.Lock()
        self._last_purge = 0.0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="aps-jobs", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        log.info("job runner started (poll every %.2fs)", self.settings.job_poll_interval)
        failures, failing_since = 0, 0.0
        while not self._stop.is_set():
            try:
                self.dispatch_due()
                self._purge_now_and_then()
            except Exception as e:  # the runner must outlive a database outage
                if failures == 0:  # one line when the state changes, never one per cycle
                    failing_since = time.monotonic()
                    log.warning(
                        "job runner: cycles failing (%s), backing off up to %.0fs",
                        _first_line(e),
                        MAX_FAILURE_BACKOFF,
                        exc_info=not isinstance(e, pw.PeeweeException),  # a bug keeps its traceback
                    )
                failures += 1
            else:
                if failures:
                    log.info(
                        "job runner: recovered after %d failed cycles in %.0fs",
                        failures,
                        time.monotonic() - failing_since,
                    )
                failures = 0
            self._wake.wait(self.cycle_wait(failures))
            self._wake.clear()
        log.info("job runner stopped")

    def cycle_wait(self, failures: int) -> float:
        """The poll interval, or a growing pause while cycles keep failing (a database outage)."""
        if not failures:
            return self.settings.job_poll_interval
        return backoff_delay(failures, self.settings.job_poll_interval, MAX_FAILURE_BACKOFF)

    def dispatch_due(self) -> int:
        """Submit every due job not already in flight here; returns how many were submitted."""
        with unit_of_work():
            due = jobs.due_ids(utcnow(), limit=4 * self.settings.outbound_threads)
        submitted = 0
        for job_id in due:
            with self._lock:
                if job_id in self._in_flight:
                    continue
                self._in_flight.add(job_id)
            try:
                future = self._pool.submit(self.executor.run, job_id)
            except RuntimeError:  # the pool is shutting down
                with self._lock:
                    self._in_flight.discard(job_id)
                break
            future.add_done_callback(lambda f, job_id=job_id: self._done(job_id, f))
            submitted += 1
        return submitted

    def _done(self, job_id: int, future: Future[JobView | None]) -> None:
        with self._lock:
            self._in_flight.discard(job_id)
        if not future.cancelled() and future.exception() is not None:
            log.error("job %s: %r", job_id, future.exception())
        self._wake.set()  # a finished job may have re-armed another generation

    def _purge_now_and_then(self) -> None:
        now = utcnow().timestamp()
        if now - self._last_purge < PURGE_EVERY:
            return
        self._last_purge = now
        cutoff = utcnow() - dt.timedelta(seconds=self.settings.job_retention)
        with unit_of_work():
            purged = jobs.purge(cutoff)
        if purged:
            log.info("purged %d finished jobs", purged)

    def drain(self) -> int:
        """Run every due job in the calling thread until none is due (tests, one-shot tools)."""
        ran = 0
        while True:
            with unit_of_work():
                due = jobs.due_ids(utcnow(), limit=100)
            if not due:
                return ran
            for job_id in due:
                self.executor.run(job_id)
                ran += 1


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__
