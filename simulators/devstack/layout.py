"""Where the local stack listens and keeps its files, and the connector config it writes for a run."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from endpoint.provisioning.demo import POSTMAN_PARTNER_ID

REPO = Path(__file__).resolve().parents[2]
DEMO_TENANT = "00000000-0000-0000-0000-000000000000"  # mapped to "Demo Customer" by the demo data
# Names the stand-ins answer for: nothing leaves the machine, the allowlist admits only these two.
ACRONIS_DC = "https://eu8-cloud.acronis.com"
CONTROLLER_URI = "https://controller.example.net:6308/"
SIM_CLIENT_ID, SIM_CLIENT_SECRET = "sim-client", "sim-secret"  # the Acronis simulator's default client
SECRET_ENV = "CONNECTOR_LOCAL_ACRONIS_SECRET"
# Gateway mode: the identity provider's host (its JWKS is served by the Acronis API simulator), the endpoint
# ids the gateway may name (both forms the docs show), and the demo partner admin of the mapping scenario.
JWKS_URL = "https://acronis.cloud/api/idp/v1/keys"
ENDPOINT_IDS = (
    "cti.a.p.acgw.endpoint.v1.0~vendor.app.endpoint.v1.0",
    "cti.a.p.acgw.endpoint.v1.1~vendor.app.endpoint.v1.1",
)
GATEWAY_LOGIN = "reseller-admin"
# --gateway: which transport /callback accepts (APS routes are always OAuth 1.0).
CALLBACK_AUTH = {"oauth1": ("oauth1",), "jwt": ("acronis_jwt",), "both": ("oauth1", "acronis_jwt")}


@dataclass(frozen=True, slots=True)
class StackOptions:
    data_dir: Path = Path("var/local")
    host: str = "127.0.0.1"
    endpoint_port: int = 8080  # private: only the inbound proxy talks to it
    inbound_port: int = 8443  # the public URL the controller signs
    outbound_port: int = 8081  # the forward proxy every outbound request goes through
    acronis_port: int = 9101
    controller_port: int = 9102
    seed: int = 1
    admin_login: str = "admin"
    demo_items: int = 20  # alerts/workloads queued at start for the outbox worker
    proxies: bool = True  # False: only the endpoint, on a plain-http public URL (no mitmproxy)
    gateway: str = "oauth1"  # a key of CALLBACK_AUTH; jwt/both need the proxies (the JWKS comes through them)
    web: bool = (
        False  # mitmweb instead of mitmdump for both proxies (a flow browser each, on the ports below)
    )
    inbound_web_port: int = 8444
    outbound_web_port: int = 8082

    def __post_init__(self) -> None:
        if self.gateway not in CALLBACK_AUTH:
            raise ValueError(f"gateway: one of {', '.join(CALLBACK_AUTH)}")
        if self.jwt and not self.proxies:
            raise ValueError("--gateway jwt needs the proxies: the JWKS is fetched through the outbound one")
        if self.web and not self.proxies:
            raise ValueError("--web shows the proxies' flows: it needs the proxies")

    @property
    def jwt(self) -> bool:
        return "acronis_jwt" in CALLBACK_AUTH[self.gateway]

    @property
    def public_url(self) -> str:
        if self.proxies:
            return f"https://localhost:{self.inbound_port}/"
        return f"http://{self.host}:{self.endpoint_port}/"

    def ports(self) -> dict[str, tuple[str, int]]:
        ports = {"endpoint": (self.host, self.endpoint_port)}
        if self.proxies:
            ports.update(
                inbound=(self.host, self.inbound_port),
                outbound=(self.host, self.outbound_port),
                acronis=(self.host, self.acronis_port),
                controller=(self.host, self.controller_port),
            )
        if self.web:
            ports.update(
                {
                    "inbound web UI": (self.host, self.inbound_web_port),
                    "outbound web UI": (self.host, self.outbound_web_port),
                }
            )
        return ports


@dataclass(frozen=True, slots=True)
class StackFiles:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "connector.toml"

    @property
    def database(self) -> Path:
        return self.root / "connector.db"

    @property
    def instance(self) -> Path:
        return self.root / "app_instance.json"

    @property
    def admin_password(self) -> Path:
        return self.root / "admin-password"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def mitm(self) -> Path:
        return self.root / "mitm"

    @property
    def ca_cert(self) -> Path:
        return self.mitm / "mitmproxy-ca-cert.pem"

    @property
    def audit_log(self) -> Path:
        return self.logs / "audit.jsonl"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def keys(self) -> Path:
        """The Acronis API simulator's signing keys (0700, files 0600); the gateway simulator signs too."""
        return self.root / "acronis-keys"

    @property
    def gateway_password(self) -> Path:
        return self.root / "gateway-partner-password"

    @property
    def gateway_state(self) -> Path:
        return self.root / "gateway-sim-state.json"

    @property
    def controller_state(self) -> Path:
        """The controller simulator's scenario state (instance and tenant ids) for the printed commands."""
        return self.root / "controller-sim-state.json"

    @property
    def inbound_audit_log(self) -> Path:
        return self.logs / "inbound-audit.jsonl"

    @property
    def demo_runs(self) -> Path:
        """How many times the stack queued demo items here: each run queues fresh ones."""
        return self.root / "demo-runs"


def write_config(options: StackOptions, files: StackFiles) -> None:
    """The connector's config for this run (regenerated on every start; it holds no secret)."""
    lines = [
        "# Written by `python -m endpoint stack` on every start; secrets come from the environment.",
        "[endpoint]",
        f'public_base_url = "{options.public_url}"',
        f'trusted_proxies = ["{options.host}/32"]' if options.proxies else "allow_plain_http = true",
        *([f"callback_auth = {_toml_list(CALLBACK_AUTH[options.gateway])}"] if options.jwt else []),
        "[server]",
        f'host = "{options.host}"',
        f"port = {options.endpoint_port}",
        "[database]",
        f'url = "sqlite:///{files.database}"',
        "[outbox]",
        f'spool_dir = "{files.spool}"',
        # Drill speed: a rig shows recovery in seconds (production defaults back off up to 15 minutes).
        "poll_interval = 0.5",
        "backoff_base = 0.5",
        "backoff_max = 5.0",
        "outage_backoff_max = 2.0",
    ]
    if options.proxies:
        lines += [
            "[proxy]",
            f'url = "http://{options.host}:{options.outbound_port}"',
            f'ca_bundle = "{files.ca_cert}"  # mitmproxy intercepts TLS to route to the stand-ins',
            "[aps]",
            f'controller_allowlist = ["{CONTROLLER_URI}"]',
            # The demo's async path: a provisioning that reads the subscriber's account from the (slow)
            # controller simulator outlasts this budget, so the controller gets 202 + APS-Retry-Timeout
            # and polls; the retry timeout is seconds here instead of the production minute or two.
            "sync_budget = 0.5",
            "retry_timeout_min = 1",
            "retry_timeout_max = 2",
            "[acronis]",
            "retry_after_max = 5.0",
            "[[acronis.datacenters]]",
            f'url = "{ACRONIS_DC}"',
            f'client_id = "{SIM_CLIENT_ID}"',
            f'client_secret_env = "{SECRET_ENV}"',
        ]
    if options.jwt:
        lines += [
            "[acronis_jwt]  # the keys come through [proxy], like every outbound call",
            f'jwks_url = "{JWKS_URL}"',
            f"endpoint_ids = {_toml_list(ENDPOINT_IDS)}",
            "[callbacks]",
            "mirroring = true",
            f'mirrored_partners_parent = "{POSTMAN_PARTNER_ID}"  # the demo root partner',
        ]
    files.config.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _toml_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{value}"' for value in values) + "]"


def admin_password(files: StackFiles) -> str:
    """The demo admin's password: generated once, kept owner-only, reused on every start."""
    return _kept_password(files.admin_password)


def gateway_partner_password(files: StackFiles) -> str:
    """The password of the gateway scenarios' partner admin (same rules as the demo admin's)."""
    return _kept_password(files.gateway_password)


def _kept_password(path: Path) -> str:
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    password = secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password + "\n")
    return password


def shown(path: Path) -> str:
    """Paths inside the repository relative to it (commands are run from there), others absolute."""
    return os.path.relpath(path, REPO) if path.is_relative_to(REPO) else str(path)
