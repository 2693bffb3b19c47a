"""Where the local stack listens and keeps its files, and the connector config it writes for a run."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO_TENANT = "00000000-0000-0000-0000-000000000000"  # mapped to "Demo Customer" by the demo data
# Names the stand-ins answer for: nothing leaves the machine, the allowlist admits only these two.
ACRONIS_DC = "https://eu8-cloud.acronis.com"
CONTROLLER_URI = "https://controller.example.net:6308/"
SIM_CLIENT_ID, SIM_CLIENT_SECRET = "sim-client", "sim-secret"  # the Acronis simulator's default client
SECRET_ENV = "CONNECTOR_LOCAL_ACRONIS_SECRET"


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


def write_config(options: StackOptions, files: StackFiles) -> None:
    """The connector's config for this run (regenerated on every start; it holds no secret)."""
    lines = [
        "# Written by `python -m endpoint stack` on every start; secrets come from the environment.",
        "[endpoint]",
        f'public_base_url = "{options.public_url}"',
        f'trusted_proxies = ["{options.host}/32"]' if options.proxies else "allow_plain_http = true",
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
            "[acronis]",
            "retry_after_max = 5.0",
            "[[acronis.datacenters]]",
            f'url = "{ACRONIS_DC}"',
            f'client_id = "{SIM_CLIENT_ID}"',
            f'client_secret_env = "{SECRET_ENV}"',
        ]
    files.config.write_text("\n".join(lines) + "\n", encoding="utf-8")


def admin_password(files: StackFiles) -> str:
    """The demo admin's password: generated once, kept owner-only, reused on every start."""
    if files.admin_password.exists():
        return files.admin_password.read_text(encoding="utf-8").strip()
    password = secrets.token_urlsafe(18)
    fd = os.open(files.admin_password, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password + "\n")
    return password


def shown(path: Path) -> str:
    """Paths inside the repository relative to it (commands are run from there), others absolute."""
    return os.path.relpath(path, REPO) if path.is_relative_to(REPO) else str(path)
