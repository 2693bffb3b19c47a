"""Settings of the APS lifecycle services: controller URI rules, async provisioning, controller calls."""

from __future__ import annotations

from dataclasses import dataclass

# Operations that may run as durable jobs and answer 202 (aps.md §4.2); name them in async_operations to
# make them always asynchronous.
JOB_OPERATIONS = (
    "tenants.provision",
    "tenants.configure",
    "tenants.unprovision",
    "tenants.disable",
    "tenants.enable",
)


@dataclass(frozen=True, slots=True)
class ApsSettings:
    """``[aps]``: what the controller may ask for, and how we answer and call it back."""

    # Shell-style patterns (fnmatch) the normalized APS-Controller-URI must match; empty: any https URI.
    controller_allowlist: tuple[str, ...] = ()
    # APS development mode: accept http:// controller URIs (never in production, aps.md §1).
    development_mode: bool = False
    # The partner organization instances serve; "" = the only top-level partner (bootstrap's root).
    partner_id: str = ""
    # APS-Retry-Timeout is drawn from this range so polls of many tasks do not bunch up (cbcext: 60-119).
    retry_timeout_min: int = 60
    retry_timeout_max: int = 119
    async_operations: tuple[str, ...] = ()  # always 202 for these; others 202 only past sync_budget
    sync_budget: float = 10.0  # seconds a sync-phase request waits for its job before answering 202
    job_lease: float = 120.0  # a running job whose runner died is resumed after this many seconds
    job_max_attempts: int = 10  # transient failures (controller unreachable) before a job fails for good
    job_backoff_base: float = 5.0
    job_backoff_max: float = 300.0
    job_poll_interval: float = 1.0
    job_retention: float = 7 * 24 * 3600.0  # finished jobs are kept this long for late polls
    controller_connect_timeout: float = 5.0
    controller_read_timeout: float = 30.0
    # The controller client's tries per call (the only retry layer: never a POST once sent), and the
    # seconds one call may spend on them, waits included; job retries across calls are job_* above.
    controller_max_tries: int = 3
    controller_backoff: float = 0.5
    controller_retry_budget: float = 10.0
    outbound_threads: int = 4  # controller calls and job steps; never on the IOLoop

    def __post_init__(self) -> None:
        unknown = sorted(set(self.async_operations) - set(JOB_OPERATIONS))
        if unknown:
            raise ValueError(f"async_operations: unknown {unknown[0]!r} (known: {', '.join(JOB_OPERATIONS)})")
        if not 1 <= self.retry_timeout_min <= self.retry_timeout_max <= 3600:
            raise ValueError("retry_timeout_min/retry_timeout_max: need 1 <= min <= max <= 3600")
        if self.sync_budget < 0 or self.job_poll_interval <= 0 or self.job_lease <= 0:
            raise ValueError("sync_budget/job_poll_interval/job_lease: must be positive")
        if self.job_max_attempts < 1 or self.controller_max_tries < 1 or self.outbound_threads < 1:
            raise ValueError("job_max_attempts/controller_max_tries/outbound_threads: must be >= 1")
        if self.controller_retry_budget < 0:
            raise ValueError("controller_retry_budget: must be >= 0")
        if self.controller_connect_timeout <= 0 or self.controller_read_timeout <= 0:
            raise ValueError("controller_connect_timeout/controller_read_timeout: must be > 0")
        if self.job_backoff_base <= 0 or self.job_backoff_max < self.job_backoff_base:
            raise ValueError("job_backoff_base/job_backoff_max: need 0 < base <= max")
        if any(not p.strip() for p in self.controller_allowlist):
            raise ValueError("controller_allowlist: empty pattern")

    @property
    def controller_timeout(self) -> tuple[float, float]:
        return (self.controller_connect_timeout, self.controller_read_timeout)
