"""What docs/configuration.md adds to the code's own words: notes by setting and by section, and the intro.

A setting's entry reads: its note from here (if any), then the comments next to its field in the dataclass,
then what start-up checks. Notes say what a terse comment leaves out (what the number counts, its unit); once
the comment in the code says it, delete the note. ``endpoint.commands.docgen`` refuses to run while a note
names a setting or a section that does not exist.
"""

from __future__ import annotations

# The page's opening: how the settings are read (config/settings.py load_settings, commands/cli.py).
INTRO = """
Every setting of the service, section by section, with its type, default and meaning. The same settings
serve every verb of `connector` (`serve`, `push`, `init`, `doctor`, ...).

**Where values come from**, later sources winning over earlier ones (`endpoint/config/settings.py`,
`load_settings`; `endpoint/commands/cli.py`):

1. the defaults below;
2. one TOML file: `--config FILE`, else the file named by `CONNECTOR_CONFIG` (`deploy/config.example.toml`
   lists every key);
3. environment variables `{prefix}<SECTION>_<KEY>`, for example `{prefix}ENDPOINT_PUBLIC_BASE_URL` or
   `{prefix}ACRONIS_JWT_LEEWAY` (the longest section name wins, so that is `acronis_jwt.leeway`). Lists are
   written comma-separated (`{prefix}ENDPOINT_TRUSTED_PROXIES=10.0.0.5/32,10.0.0.6/32`), booleans as
   `true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off`; tables of tables such as `acronis.datacenters`
   can only come from the file;
4. flags: `--db` (`database.url`), `--public-url` (`endpoint.public_base_url`), `--host`, `--port`
   (`server.*`), `--log-level` (`logging.level`) and `--set SECTION.KEY=VALUE` for any key.

Every value is checked at start and a bad one stops the command with its key path, for example
`endpoint.timestamp_window: must be 1..600 seconds` (exit code 2). An unknown section or key is an error
too, and so is a variable named like an override that matches no key (such as `{prefix}PROXY_PASSWORD`):
give secret variables other names.

**Secrets never go in the file.** Settings ending in `_env` name the environment variable that holds the
secret (the proxy password, each data center's client secret); OAuth consumer secrets and password hashes
live in the database (`connector init`, `connector rotate-key`).
"""

# Put before the dataclass's docstring (these have none).
SECTION_NOTES = {
    "server": "The listener of `connector serve`: where it binds, how many processes, and its limits on "
    "connections and request heads.",
    "database": "The one database of the service (peewee, pooled): SQLite for one host, PostgreSQL or "
    "MySQL when several processes or hosts share it.",
    "metrics": "The operations listener: `/metrics` (Prometheus text) and `/healthz` of `serve` on a port of "
    "its own, never reachable through the inbound proxy; `push` serves its own `/metrics`.",
    "logging": "Log level and format (`text` or one JSON object per line) and the sampling of refused "
    "requests and logins.",
}

# Put before the comments of the field.
FIELD_NOTES = {
    "endpoint.max_body_size": "Largest request body in bytes; a larger Content-Length is answered 413 "
    "before the body is read.",
    "endpoint.timestamp_window": "Seconds of clock skew accepted for `oauth_timestamp`, in both directions.",
    "endpoint.signature_methods": "OAuth 1.0 signature methods accepted on inbound requests.",
    "endpoint.ledger_ttl": "Seconds a callback's stored answer is kept in the request ledger (a retry with "
    "the same `request_id` within it gets the same answer).",
    "endpoint.app_code": "This CyberApp's code: the custom callback ids (`<app_code>.users_read.v1.0`), "
    "the error response type and the CTIs of queued alerts and workloads are built on it.",
    "server.port": "TCP port the endpoint listens on.",
    "server.workers": "Serving processes sharing the port (`connector serve --workers N` overrides it).",
    "server.max_header_size": "Largest request head (request line and headers) in bytes.",
    "server.body_timeout": "Seconds a request body may take to arrive.",
    "auth.cache_ttl": "Seconds a verified (user, password) pair is remembered, so argon2 runs only on a "
    "cold credential.",
    "auth.cache_size": "Verified credentials remembered at most (per process).",
    "auth.verify_threads": "Threads running argon2 (verifications and new hashes).",
    "auth.max_pending_verifies": "argon2 jobs queued or running at once, per process.",
    "auth.failure_max_delay": "Longest delay, in seconds, added to a client's failed logins past "
    "`client_failure_soft_limit`.",
    "auth.failure_window": "Seconds over which failed logins are counted for the limits above.",
    "auth.max_header_bytes": "Longest `X-CyberApp-Auth` header accepted, in bytes.",
    "auth.argon2_memory_kib": "argon2id memory cost (KiB) of new password hashes; a login with an older "
    "hash stores a new one with the current parameters.",
    "auth.argon2_parallelism": "argon2id lanes of new password hashes.",
    "database.url": "`sqlite:///relative/path`, `sqlite:////absolute/path`, `postgresql://user@host/db` "
    "or `mysql://user@host/db` (a password in the URL belongs in the environment variable "
    "`CONNECTOR_DATABASE_URL`, not in the file).",
    "database.max_connections": "Pooled connections.",
    "logging.format": "Log line format; `text` writes `<time> <LEVEL> <logger>: <message> key=value ...`, "
    "`json` one object per line.",
    "proxy.url": "The one forward proxy every outbound request goes through; unset: direct connections.",
    "proxy.ca_bundle": "CA bundle (PEM) that outbound TLS is verified against instead of the default "
    "store: mitmproxy's CA when the proxy intercepts TLS, or a private controller CA.",
    "acronis.max_tries": "Tries of one call to the API.",
    "acronis.datacenters.token_path": "Path of the token request on this data center.",
    "outbox.backoff_base": "First wait before an item's next delivery attempt.",
    "outbox.worker_id": "This worker's identity on the items it leases.",
    "aps.async_operations": "Tenant operations that always answer 202 and run as durable jobs.",
    "aps.outbound_threads": "Threads of the outbound pool.",
    "logging.level": "Level of the service's own log lines.",
    "logging.rejections_verbatim": "Lines written per rejection reason and interval before the rest are "
    "only counted.",
    "proxy.username": "User for the proxy's Basic authentication (or put it in `url`); the password comes "
    "from `password_env`.",
    "proxy.client_cert": "PEM file of a TLS client certificate presented on outbound HTTPS connections.",
    "proxy.client_key": "Its private key, when not in the `client_cert` file.",
    "proxy.connect_timeout": "Seconds to connect, for Acronis API calls, JWKS fetches and `connector "
    "register`; controller calls use `aps.controller_connect_timeout`.",
    "proxy.read_timeout": "Seconds to wait for an answer, for Acronis API calls and JWKS fetches (`connector "
    "register` has `--timeout`); controller calls use `aps.controller_read_timeout`.",
    "proxy.pool_maxsize": "Connections (tunnels) kept open per destination host.",
    "acronis.retry_budget": "Seconds one call may spend on its tries, waits included.",
    "acronis.backoff_base": "First wait between two tries of a call, in seconds; it doubles per try (each "
    "wait is half fixed, half random).",
    "acronis.backoff_max": "Longest wait between two tries of one call.",
    "acronis.retry_after_max": "Cap on a `Retry-After` the API sends with 408, 429 or 5xx; the next try "
    "waits at least the capped value.",
    "acronis.token_refresh_margin": "Seconds before its expiry a cached access token is replaced "
    "(short-lived tokens at half-life).",
    "acronis.datacenters.url": "The data center's base URL, e.g. `https://eu8-cloud.acronis.com`: it must "
    "match the `context.datacenter_url` callbacks store with a mapping.",
    "acronis.datacenters.client_id": "The CyberApp's API client id in this data center.",
    "acronis.datacenters.client_secret_env": "Environment variable holding that client's secret.",
    "outbox.spool_dir": "Directory `connector push` ingests `*.json` and `*.jsonl` files from.",
    "outbox.backoff_max": "Longest wait before an item's next delivery attempt.",
    "outbox.poll_interval": "Seconds between passes of the worker when nothing is due.",
    "outbox.lease_seconds": "Seconds claimed items belong to one worker; another worker takes them over "
    "after that (a stopped worker's on the same host at its next start).",
    "aps.retry_timeout_max": "Upper end of that range.",
    "aps.job_backoff_base": "First wait after a job's transient failure (controller unreachable), in "
    "seconds; it doubles per attempt (half fixed, half random).",
    "aps.job_backoff_max": "Longest wait between two attempts of a job.",
    "aps.job_poll_interval": "Seconds between the job runner's looks for due jobs.",
    "aps.controller_connect_timeout": "Seconds to connect to the controller (through the proxy).",
    "aps.controller_read_timeout": "Seconds to wait for the controller's answer.",
    "aps.controller_backoff": "First wait between two tries of a controller call, in seconds; it doubles "
    "per try (half fixed, half random), up to 8 s.",
    "aps.controller_retry_budget": "Seconds one controller call may spend on its tries, waits included.",
    "acronis_jwt.issuers": "Accepted `iss` values of gateway tokens.",
}
