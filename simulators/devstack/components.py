"""How each process of the local stack is started: command lines, environments, readiness."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from simulators.devstack.layout import (
    ACRONIS_DC,
    CONTROLLER_URI,
    JWKS_URL,
    REPO,
    SECRET_ENV,
    SIM_CLIENT_SECRET,
    StackFiles,
    StackOptions,
)
from simulators.devstack.supervisor import StackError

MITMDUMP = REPO / ".venv-mitm" / "bin" / "mitmdump"
MITMWEB = REPO / ".venv-mitm" / "bin" / "mitmweb"
ADDONS = REPO / "proxy" / "mitm"
# The demo's async path: the controller simulator takes this long to show a subscriber account, longer than
# the endpoint waits for a provisioning job before it answers 202 (aps.sync_budget in layout.write_config).
ACCOUNT_DELAY = 1.5
OUTBOUND = "outbound-proxy"  # the outbound proxy's component name (drills restart it)


@dataclass(frozen=True)
class Component:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready_port: tuple[str, int] | None = None


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment for children: no proxy or CA variables leak in from the shell."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TERM", "TZ")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **(extra or {})}


def _authority(url: str) -> str:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}[parts.scheme]
    return f"{parts.hostname}:{parts.port or default}"


def endpoint(options: StackOptions, files: StackFiles) -> Component:
    return Component(
        "endpoint",
        [sys.executable, "-m", "endpoint", "serve", "--config", str(files.config)],
        ready_port=(options.host, options.endpoint_port),
    )


def worker(options: StackOptions, files: StackFiles) -> Component:
    return Component(
        "outbox-worker",
        [sys.executable, "-m", "endpoint", "push", "--config", str(files.config), "--progress", "plain"],
        env={SECRET_ENV: SIM_CLIENT_SECRET},
    )


def acronis_simulator(options: StackOptions, files: StackFiles) -> Component:
    """The data center's API; in gateway mode also the identity provider (its JWKS, keys in files.keys)."""
    argv = [
        sys.executable,
        "-m",
        "simulators.acronis_api",
        "--host",
        options.host,
        "--port",
        str(options.acronis_port),
        "--record",
        str(files.logs / "acronis-received.jsonl"),
    ]
    if options.jwt:
        argv += ["--keys-dir", str(files.keys)]
    return Component("acronis-simulator", argv, ready_port=(options.host, options.acronis_port))


def controller_simulator(options: StackOptions, files: StackFiles) -> Component:
    return Component(
        "controller-simulator",
        [
            sys.executable,
            "-m",
            "simulators.controller",
            "--instance",
            str(files.instance),
            "serve",
            "--host",
            options.host,
            "--port",
            str(options.controller_port),
            "--public-uri",
            CONTROLLER_URI,
            "--record",
            str(files.logs / "controller-received.jsonl"),
            "--account-delay",
            str(ACCOUNT_DELAY),
        ],
        ready_port=(options.host, options.controller_port),
    )


def _mitm(options: StackOptions, web_port: int) -> list[str]:
    """mitmdump, or with --web mitmweb serving its flow browser on ``web_port`` (no browser opened)."""
    if not options.web:
        return [str(MITMDUMP)]
    return [
        str(MITMWEB),
        "--web-host",
        options.host,
        "--web-port",
        str(web_port),
        "--no-web-open-browser",
    ]


def outbound_proxy(options: StackOptions, files: StackFiles, faults: tuple[str, ...] = ()) -> Component:
    """mitmdump as the forward proxy: audit every flow, allow only the stack's hosts (the data center, the
    controller; in gateway mode the identity provider too), route them to the stand-ins."""
    sim = f"http://{options.host}"
    routes = [(ACRONIS_DC, options.acronis_port), (CONTROLLER_URI, options.controller_port)]
    if options.jwt:  # the JWKS host: the Acronis API simulator serves the keys
        routes.append((JWKS_URL, options.acronis_port))
    argv = [
        *_mitm(options, options.outbound_web_port),
        "--listen-host",
        options.host,
        "--listen-port",
        str(options.outbound_port),
        "--set",
        f"confdir={files.mitm}",
        "--set",
        "connection_strategy=lazy",
        "-s",
        str(ADDONS / "audit.py"),
        "-s",
        str(ADDONS / "standins.py"),
        "-s",
        str(ADDONS / "faults.py"),
        "--set",
        f"audit_log={files.audit_log}",
    ]
    for url, _ in routes:
        argv += ["--set", f"audit_allow={_authority(url)}"]
    for url, port in routes:
        argv += ["--set", f"standins={_authority(url)}={sim}:{port}"]
    for spec in faults:
        argv += ["--set", f"faults={spec}"]
    return Component(OUTBOUND, argv, ready_port=(options.host, options.outbound_port))


def inbound_proxy(options: StackOptions, files: StackFiles) -> Component:
    """mitmdump as the reverse proxy presenting the public URL (TLS with the local mitmproxy CA)."""
    argv = [
        *_mitm(options, options.inbound_web_port),
        "--mode",
        f"reverse:http://{options.host}:{options.endpoint_port}@{options.inbound_port}",
        "--listen-host",
        options.host,
        "--set",
        f"confdir={files.mitm}",
        "-s",
        str(ADDONS / "inbound.py"),
        "-s",
        str(ADDONS / "audit.py"),
        "--set",
        f"inbound_controller_uri={CONTROLLER_URI}",
        "--set",
        f"audit_log={files.inbound_audit_log}",
    ]
    return Component("inbound-proxy", argv, ready_port=(options.host, options.inbound_port))


def mitmproxy_version(venv: Path = MITMDUMP.parents[1]) -> tuple[int, ...] | None:
    """The version installed in mitmproxy's environment, read from its package metadata (no process)."""
    for info in sorted(venv.glob("lib/python*/site-packages/mitmproxy-*.dist-info")):
        numbers = info.name.removeprefix("mitmproxy-").removesuffix(".dist-info").split(".")
        if all(part.isdigit() for part in numbers[:2]):
            return tuple(int(part) for part in numbers[:3] if part.isdigit())
    return None


def mitmweb_asks_for_a_token(venv: Path = MITMDUMP.parents[1]) -> bool:
    """From mitmproxy 11.1 on, mitmweb's UI wants a login token (printed in its log); 11.0 wants none."""
    version = mitmproxy_version(venv)
    return version is not None and version[:2] >= (11, 1)


def require_mitmdump(web: bool = False) -> None:
    """:raise StackError: mitmproxy's own environment is missing."""
    tool = MITMWEB if web else MITMDUMP
    if not tool.exists():
        raise StackError(f"{tool} not found: run scripts/setup (mitmproxy lives in .venv-mitm)")


def wait_for_ca(files: StackFiles, timeout: float = 20.0) -> None:
    """mitmproxy writes its CA on first start; clients need the file to trust the interception."""
    deadline = time.monotonic() + timeout
    while not files.ca_cert.exists():
        if time.monotonic() > deadline:
            raise StackError(f"mitmproxy CA not written to {files.ca_cert}")
        time.sleep(0.05)
