"""The service's own settings sections: [server], [endpoint], [auth] and [logging].

Every other section is defined next to the code that reads it (models/, proxy/, aps/, callbacks/, outbox/,
auth/jwt_settings.py, the metrics); config/settings.py gathers them all into Settings.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from endpoint.auth.jwt_settings import callback_auth_error
from endpoint.config.loader import ConfigError

SIGNATURE_METHODS = ("HMAC-SHA1", "HMAC-SHA256")
DB_MODES = ("auto", "inline", "threads")


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"  # bind a loopback/private address; the inbound proxy is the public face
    port: int = 8080
    workers: int = 1
    max_header_size: int = 32 * 1024
    body_timeout: float = 15.0  # slow-body (slowloris) guard
    # Header phase: the whole request head must arrive within this, and an idle keep-alive connection is
    # closed after it. Keep it above the inbound proxy's upstream keep-alive (nginx: 10 s).
    idle_connection_timeout: float = 15.0
    # Open client connections per process; beyond it a new one is closed at once. Checked at start
    # against the descriptor limit (RLIMIT_NOFILE), which must hold it plus 128.
    max_connections: int = 512
    # Database executor threads (server databases); keep <= database.max_connections. More only fight
    # over the GIL: PostgreSQL on 2 cores served 0.16x bare Tornado with 8 threads, 0.21x with 4.
    db_threads: int = 4
    # Where a request's unit of work runs: "inline" on the IOLoop (embedded SQLite: faster than a thread
    # hop), "threads" on the executor (server databases), "auto" picks by the database URL.
    db_mode: str = "auto"

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError("port: must be 0..65535")
        if self.workers < 1:
            raise ValueError("workers: must be >= 1")
        if self.db_threads < 1:
            raise ValueError("db_threads: must be >= 1")
        if self.max_connections < 1:
            raise ValueError("max_connections: must be >= 1")
        if not 1 <= self.idle_connection_timeout <= 3600:
            raise ValueError("idle_connection_timeout: must be 1..3600 seconds")
        if self.max_header_size < 1024:
            raise ValueError("max_header_size: must be >= 1024")
        if self.db_mode not in DB_MODES:
            raise ValueError(f"db_mode: must be one of {', '.join(DB_MODES)}")

    def inline_database(self, backend: str) -> bool:
        """Whether units of work run on the IOLoop for ``backend`` (DatabaseSettings.backend)."""
        return self.db_mode == "inline" or (self.db_mode == "auto" and backend == "sqlite")


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    """What the inbound verification pipeline needs."""

    # The URL the controller signs: byte-identical to aps.endpoint in app_instance.json. Required by
    # `serve` and bootstrap (checked there); commands that never verify a signature may leave it empty.
    public_base_url: str = ""
    # Path prefix under which Tornado receives that base ("/" when the proxy maps it one to one).
    mount_path: str = "/"
    # Only TCP peers inside these CIDRs may set the client IP through X-Forwarded-For / X-Real-Ip.
    trusted_proxies: tuple[str, ...] = ()
    # Development only: accept an http:// public_base_url (APS development mode).
    allow_plain_http: bool = False
    max_body_size: int = 1024 * 1024
    # Request bodies this process buffers at once, counted from the moment a request verified: past it,
    # 503 + Retry-After before the body is read. Unverified requests never get to buffer anything.
    max_buffered_body: int = 64 * 1024 * 1024
    timestamp_window: int = 300
    # Seconds between re-reads of the consumer secrets: how long a new, rotated or revoked key takes to
    # reach every serving process (expiry by not_after is exact).
    secrets_refresh: float = 2.0
    signature_methods: tuple[str, ...] = SIGNATURE_METHODS
    require_body_hash: bool = False  # APSC never sends oauth_body_hash: keep off for controller traffic
    ledger_ttl: int = 24 * 3600
    app_code: str = "vendor.app"
    health_via_proxy: bool = False  # answer /healthz on the serving port to requests via the inbound proxy
    # What /callback accepts, picked per request by the Authorization scheme: the controller's OAuth 1.0
    # signature ("oauth1") and/or the Acronis gateway's Bearer JWT ("acronis_jwt", see [acronis_jwt]).
    callback_auth: tuple[str, ...] = ("oauth1",)

    def __post_init__(self) -> None:
        self._check_public_url()
        if error := callback_auth_error(self.callback_auth):
            raise ValueError(error)
        if not (self.mount_path.startswith("/") and self.mount_path.endswith("/")):
            raise ValueError("mount_path: must start and end with '/'")
        for cidr in self.trusted_proxies:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as e:
                raise ValueError(f"trusted_proxies: {cidr!r} is not a CIDR") from e
        if not 1 <= self.timestamp_window <= 600:
            raise ValueError("timestamp_window: must be 1..600 seconds")
        if not self.signature_methods or not set(self.signature_methods) <= set(SIGNATURE_METHODS):
            raise ValueError(f"signature_methods: choose from {', '.join(SIGNATURE_METHODS)}")
        if not 1024 <= self.max_body_size <= 64 * 1024 * 1024:
            raise ValueError("max_body_size: must be 1 KiB..64 MiB")
        if self.max_buffered_body < self.max_body_size:
            raise ValueError("max_buffered_body: must be >= max_body_size")
        if not 0.1 <= self.secrets_refresh <= 60:
            raise ValueError("secrets_refresh: must be 0.1..60 seconds")

    def _check_public_url(self) -> None:
        if not self.public_base_url:
            return
        parts = urlsplit(self.public_base_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("public_base_url: must be an absolute https:// URL")
        try:
            parts.port  # noqa: B018 - raises ValueError for a non-numeric or out-of-range port
        except ValueError as e:
            raise ValueError(f"public_base_url: {e}") from e
        if parts.scheme == "http" and not self.allow_plain_http:
            raise ValueError(
                "public_base_url: must be https:// (set allow_plain_http only for local development)"
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("public_base_url: must not carry a query, fragment or credentials")

    def require_public_url(self) -> None:
        """:raise ConfigError: when the public URL needed to verify signatures is not configured."""
        if not self.public_base_url:
            raise ConfigError(
                "endpoint.public_base_url: required (the URL the controller signs, aps.endpoint)"
            )

    @property
    def public_base(self) -> str:
        """public_base_url normalized per RFC 5849 §3.4.1.2, without its trailing slash."""
        parts = urlsplit(self.public_base_url)
        host = (parts.hostname or "").lower()
        if ":" in host:
            host = f"[{host}]"
        default_port = {"https": 443, "http": 80}[parts.scheme]
        netloc = host if parts.port in (None, default_port) else f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))

    @property
    def proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(c, strict=False) for c in self.trusted_proxies)


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """End-user authentication (X-CyberApp-Auth): argon2 cost, cache and throttling."""

    cache_ttl: float = 300.0
    cache_size: int = 10_000
    verify_threads: int = 0  # 0: one per CPU core
    max_pending_verifies: int = 32  # beyond this, 429 instead of unbounded memory (64 MiB per verify)
    failure_limit: int = 10  # failed logins per identity within failure_window, then 429 for it only
    pair_failure_limit: int = 5  # failed logins per (client, identity) within failure_window, then 429
    # Failed logins per client within failure_window before its FAILED attempts are answered late (growing
    # up to failure_max_delay). It never refuses, and never delays another identity's correct login.
    client_failure_soft_limit: int = 20
    failure_max_delay: float = 2.0
    failure_window: float = 300.0
    max_header_bytes: int = 8192
    argon2_time_cost: int = 3  # RFC 9106 second recommendation (argon2-cffi defaults)
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4

    def __post_init__(self) -> None:
        for name in (
            "cache_size",
            "max_pending_verifies",
            "failure_limit",
            "pair_failure_limit",
            "client_failure_soft_limit",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1")
        if self.verify_threads < 0:
            raise ValueError("verify_threads: must be >= 0")
        if not 0 <= self.failure_max_delay <= 30:
            raise ValueError("failure_max_delay: must be 0..30 seconds")
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ValueError("argon2_memory_kib: must be >= 8 * argon2_parallelism")


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    level: str = "INFO"
    format: str = "text"  # "text" or "json"
    # Rejected requests and logins, and what a database outage repeats per request (503s, retried units):
    # per interval, this many lines of each reason are written, the rest summed up in one line at the end
    # of the interval (a flood of bad requests or an outage under load must not fill the disk).
    rejection_interval: float = 10.0
    rejections_verbatim: int = 5

    def __post_init__(self) -> None:
        if self.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("level: must be DEBUG, INFO, WARNING or ERROR")
        if self.format not in ("text", "json"):
            raise ValueError("format: must be text or json")
        if not 1 <= self.rejection_interval <= 3600:
            raise ValueError("rejection_interval: must be 1..3600 seconds")
        if self.rejections_verbatim < 1:
            raise ValueError("rejections_verbatim: must be >= 1")
