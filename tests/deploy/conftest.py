"""The production topology on loopback: controller -> nginx (TLS) -> endpoint -> squid -> simulators.

Everything runs as real processes the way deploy/ describes them, on free ports, under one temporary
directory that is removed afterwards: the connector is bootstrapped with its CLI, the endpoint is
`python -m endpoint serve`, the worker `python -m endpoint push --once`, nginx and squid run the files in
deploy/ (see proxies.py). The Acronis API and controller simulators serve TLS with certificates from one
throwaway CA (trustme) under their production names, which squid resolves from a hosts file.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme

from simulators.devstack.components import child_env
from simulators.devstack.supervisor import Supervisor
from tests.deploy import proxies
from tests.deploy.proxies import ACRONIS_HOST, CONTROLLER_HOST, PROXY_USER, free_port

REPO = proxies.REPO
# Characters that must survive percent-encoding into the proxy URL and squid's helper protocol.
PROXY_PASSWORD = "p:ss w%rd@/+#?"
PROXY_PASSWORD_ENV = "EGRESS_PROXY_PASSWORD"  # not CONNECTOR_PROXY_*: that would be read as a setting
ACRONIS_SECRET_ENV = "ACRONIS_EU8_CLIENT_SECRET"
SIM_CLIENT_ID, SIM_CLIENT_SECRET = "sim-client", "sim-secret"  # the Acronis simulator's default client
ADMIN_PASSWORD = "deploy-admin-password-1"


@dataclass
class Deployment:
    base: Path
    supervisor: Supervisor
    ca: trustme.CA
    ca_pem: Path
    endpoint_port: int
    nginx_port: int
    squid_port: int
    squid_dir: Path
    acronis_port: int
    controller_port: int

    @property
    def public_url(self) -> str:
        return f"https://localhost:{self.nginx_port}/"

    @property
    def controller_uri(self) -> str:
        return f"https://{CONTROLLER_HOST}:{self.controller_port}/"

    @property
    def datacenter(self) -> str:
        return f"https://{ACRONIS_HOST}:{self.acronis_port}"

    @property
    def config(self) -> Path:
        return self.base / "connector.toml"

    @property
    def instance(self) -> Path:
        return self.base / "app_instance.json"

    @property
    def database(self) -> Path:
        return self.base / "connector.db"

    def cert(self, name: str, *hosts: str) -> tuple[str, str]:
        """A leaf certificate for ``hosts`` from the deployment's CA: (chain path, key path)."""
        leaf = self.ca.issue_cert(*hosts)
        chain, key = self.base / f"{name}.pem", self.base / f"{name}.key"
        leaf.private_key_pem.write_to_path(str(key))
        leaf.cert_chain_pems[0].write_to_path(str(chain))
        for extra in leaf.cert_chain_pems[1:]:
            extra.write_to_path(str(chain), append=True)
        return str(chain), str(key)

    def run(
        self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *argv],
            cwd=REPO,
            env=child_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def controller(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The controller simulator CLI, calling the public URL (nginx), trusting our CA."""
        return self.run(
            [
                "-m",
                "simulators.controller",
                "--instance",
                str(self.instance),
                "--ca-bundle",
                str(self.ca_pem),
                *args,
            ]
        )

    def push(self, password: str) -> subprocess.CompletedProcess[str]:
        """``python -m endpoint push --once`` with the proxy password in the variable the config names."""
        env = {PROXY_PASSWORD_ENV: password, ACRONIS_SECRET_ENV: SIM_CLIENT_SECRET}
        return self.run(
            ["-m", "endpoint", "push", "--config", str(self.config), "--once", "--progress", "plain"], env
        )

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.database, timeout=10) as conn:
            return conn.execute(query, params).fetchall()

    def outbox(self) -> dict[str, int]:
        return dict(self.sql("SELECT status, COUNT(*) FROM outbox_item GROUP BY status"))  # type: ignore[arg-type]

    def received(self) -> dict[str, Any]:
        """What the Acronis simulator accepted (asked directly, not through squid)."""
        url = f"https://127.0.0.1:{self.acronis_port}/_sim/received"
        response = requests.get(url, verify=str(self.ca_pem), timeout=5)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def log(self, name: str) -> str:
        path = {
            "endpoint": self.base / "logs" / "endpoint.log",
            "nginx": self.base / "nginx" / "connector.access.log",
            "squid": self.squid_dir / "access.log",
            "controller": self.base / "controller-received.jsonl",
        }[name]
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def wait_for_log(self, name: str, pattern: str, timeout: float = 10.0) -> str:
        """The log once ``pattern`` is in it (squid's log daemon and the endpoint write a little later)."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, text := self.log(name)):
            assert time.monotonic() < deadline, f"{pattern!r} not in the {name} log:\n{text[-3000:]}"
            time.sleep(0.1)
        return text

    def endpoint_requests(self) -> list[dict[str, Any]]:
        """The endpoint's structured access lines (JSON logging)."""
        lines = [json.loads(line) for line in self.log("endpoint").splitlines() if line.startswith("{")]
        return [line for line in lines if line.get("logger") == "endpoint.access"]


def write_config(deployment: Deployment) -> None:
    """The connector's config for this deployment: the shape deploy/README.md describes."""
    d = deployment
    d.config.write_text(
        f"""
[endpoint]
public_base_url = "{d.public_url}"
trusted_proxies = ["127.0.0.1/32"]
[server]
host = "127.0.0.1"
port = {d.endpoint_port}
[database]
url = "sqlite:///{d.database}"
[logging]
format = "json"
[proxy]
url = "http://127.0.0.1:{d.squid_port}"
username = "{PROXY_USER}"
password_env = "{PROXY_PASSWORD_ENV}"
ca_bundle = "{d.ca_pem}"
connect_timeout = 2.0
read_timeout = 10.0
[aps]
controller_allowlist = ["{d.controller_uri}"]
[outbox]
spool_dir = "{d.base / "spool"}"
[[acronis.datacenters]]
url = "{d.datacenter}"
client_id = "{SIM_CLIENT_ID}"
client_secret_env = "{ACRONIS_SECRET_ENV}"
""",
        encoding="utf-8",
    )


def bootstrap(d: Deployment) -> None:
    result = d.run(
        ["bootstrap.py", "--config", str(d.config), "--demo", "--instance-json", str(d.instance)],
        {"CONNECTOR_ADMIN_PASSWORD": ADMIN_PASSWORD},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The demo tenant is mapped on the production DC URL (port 443); our simulator has a free port.
    d.sql("UPDATE organization_mapping SET datacenter_url = ?", d.datacenter)


def start_endpoint(d: Deployment) -> None:
    """``python -m endpoint serve`` with the secrets in the variables the config names."""
    d.supervisor.start(
        "endpoint",
        [sys.executable, "-m", "endpoint", "serve", "--config", str(d.config)],
        env=child_env({PROXY_PASSWORD_ENV: PROXY_PASSWORD, ACRONIS_SECRET_ENV: SIM_CLIENT_SECRET}),
        cwd=REPO,
        ready_port=("127.0.0.1", d.endpoint_port),
    )


def start_services(d: Deployment) -> None:
    acronis_cert, acronis_key = d.cert("acronis", ACRONIS_HOST, "127.0.0.1")
    d.supervisor.start(
        "acronis-simulator",
        [sys.executable, "-m", "simulators.acronis_api", "--port", str(d.acronis_port)]
        + ["--tls-cert", acronis_cert, "--tls-key", acronis_key],
        env=child_env(),
        cwd=REPO,
        ready_port=("127.0.0.1", d.acronis_port),
    )
    controller_cert, controller_key = d.cert("controller", CONTROLLER_HOST)
    d.supervisor.start(
        "controller-simulator",
        [sys.executable, "-m", "simulators.controller", "--instance", str(d.instance), "serve"]
        + ["--port", str(d.controller_port), "--tls-cert", controller_cert, "--tls-key", controller_key]
        + ["--public-uri", d.controller_uri, "--record", str(d.base / "controller-received.jsonl")],
        env=child_env(),
        cwd=REPO,
        ready_port=("127.0.0.1", d.controller_port),
    )
    start_endpoint(d)


def print_logs(base: Path) -> None:
    for path in sorted(base.rglob("*.log")):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[-20:]
        print(f"--- {path.relative_to(base)}", *lines, sep="\n")


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    reason = proxies.missing_tools()
    if reason:
        pytest.skip(reason)
    # Not under pytest's basetemp: its parents are private to us, and the daemons drop root to other users.
    base = Path(tempfile.mkdtemp(prefix="connector-deploy-"))
    base.chmod(0o711)
    supervisor = Supervisor(base / "logs")
    try:
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(base / "ca.pem"))
        acronis_port, controller_port, endpoint_port = free_port(), free_port(), free_port()
        squid_port, squid_dir = proxies.start_squid(
            supervisor,
            base,
            password=PROXY_PASSWORD,
            acronis_port=acronis_port,
            controller_port=controller_port,
        )
        d = Deployment(
            base,
            supervisor,
            ca,
            base / "ca.pem",
            endpoint_port,
            0,
            squid_port,
            squid_dir,
            acronis_port,
            controller_port,
        )
        cert, key = d.cert("nginx", "localhost", "127.0.0.1")
        d.nginx_port = proxies.start_nginx(
            supervisor, "nginx", base, upstream=endpoint_port, cert=cert, key=key
        )
        write_config(d)
        bootstrap(d)
        start_services(d)
    except BaseException:
        print_logs(base)  # pytest shows captured output with the error; the directory is removed below
        supervisor.stop_all()
        shutil.rmtree(base, ignore_errors=True)
        raise
    try:
        yield d
    finally:
        supervisor.stop_all()
        leftovers = subprocess.run(["pgrep", "-af", str(base)], capture_output=True, text=True)
        shutil.rmtree(base, ignore_errors=True)
        assert leftovers.stdout.strip() == "", f"orphan processes: {leftovers.stdout}"
