"""Settings of the outbound path: Acronis datacenters and their API clients, and the outbox worker."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from proxy.acronis import Datacenter
from proxy.errors import SecretNotSet
from proxy.origins import normalize_datacenter_url


@dataclass(frozen=True, slots=True)
class DatacenterSettings:
    """One DC the CyberApp is deployed in; the client secret lives in the variable ``client_secret_env``."""

    url: str
    client_id: str
    client_secret_env: str
    token_path: str = "/bc/idp/token"  # or "/api/2/idp/token" (Account Management API v2)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"datacenters: url {self.url!r} must be https://host[:port]")
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(f"datacenters: url {self.url!r} must be a bare base URL")
        if not self.client_id or not self.client_secret_env:
            raise ValueError("datacenters: client_id and client_secret_env are required")
        if not self.token_path.startswith("/") or "//" in self.token_path:
            raise ValueError("datacenters: token_path must be an absolute path on the DC")

    @property
    def key(self) -> str:
        return normalize_datacenter_url(self.url)


@dataclass(frozen=True, slots=True)
class AcronisSettings:
    """Where alerts and workloads go: only the DCs listed here ever receive our client credentials."""

    datacenters: tuple[DatacenterSettings, ...] = ()
    allow_plain_http: bool = False  # local simulator only: production DCs are https
    batch_size: int = 100  # workloads per request; the API publishes no maximum
    default_allowed_actions: tuple[str, ...] = ()  # action CTIs for workloads that bring none
    max_tries: int = 4  # per call, within retry_budget (408/429/5xx/connection errors)
    retry_budget: float = 30.0
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    retry_after_max: float = 60.0
    token_refresh_margin: float = 300.0

    def __post_init__(self) -> None:
        keys = [dc.key for dc in self.datacenters]
        if len(set(keys)) != len(keys):
            raise ValueError("datacenters: a datacenter URL is listed twice")
        if not self.allow_plain_http and any(k.startswith("http://") for k in keys):
            raise ValueError(
                "datacenters: url must be https:// (allow_plain_http is for the local simulator)"
            )
        if not 1 <= self.batch_size <= 1000:
            raise ValueError("batch_size: must be 1..1000")
        if self.max_tries < 1 or self.retry_budget <= 0:
            raise ValueError("max_tries/retry_budget: must be positive")
        if not 0 < self.retry_after_max <= 60:
            raise ValueError("retry_after_max: must be in (0, 60] seconds")

    def find(self, url: str) -> DatacenterSettings | None:
        """The configured DC matching ``url`` (normalized), or None: never a fallback to another DC."""
        key = normalize_datacenter_url(url)
        return next((dc for dc in self.datacenters if dc.key == key), None)

    def resolve(self, environ: Mapping[str, str]) -> dict[str, Datacenter]:
        """Normalized URL -> DC with its secret read from the environment.

        :raise SecretNotSet: naming the unset variable.
        """
        resolved: dict[str, Datacenter] = {}
        for dc in self.datacenters:
            secret = environ.get(dc.client_secret_env)
            if not secret:
                raise SecretNotSet("acronis.datacenters.client_secret_env", dc.client_secret_env, dc.key)
            resolved[dc.key] = Datacenter(dc.key, dc.client_id, secret, dc.token_path)
        return resolved


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    """The durable queue and its worker."""

    spool_dir: str = "var/spool"
    max_attempts: int = 12  # delivery cycles that got an error answer; then dead-letter
    max_age: float = 7 * 24 * 3600.0  # seconds since queued; then dead-letter even during an outage
    backoff_base: float = 2.0  # seconds; doubled per attempt, with jitter
    backoff_max: float = 900.0
    outage_backoff_max: float = 60.0  # pause of a DC that is unreachable (proxy down, auth failing)
    poll_interval: float = 2.0
    claim_limit: int = 500  # items leased per DC per cycle
    lease_seconds: float = 300.0
    worker_id: str = ""  # "" = "<host>:<pid>" (unique per process); set one to keep it across restarts

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.claim_limit < 1:
            raise ValueError("max_attempts/claim_limit: must be >= 1")
        if (
            min(self.max_age, self.backoff_base, self.backoff_max, self.poll_interval, self.lease_seconds)
            <= 0
        ):
            raise ValueError("max_age/backoff/poll_interval/lease_seconds: must be > 0")
        if len(self.worker_id) > 64:
            raise ValueError("worker_id: at most 64 characters")

    @property
    def worker(self) -> str:
        """This process's lease identity: two workers on one host never share leases by default."""
        return self.worker_id or f"{socket.gethostname()[:48]}:{os.getpid()}"
