"""The whole local stack as real processes (two mitmdumps, simulators, endpoint, worker) on free ports."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from simulators.devstack.components import MITMDUMP
from simulators.devstack.layout import REPO, StackOptions
from simulators.devstack.stack import LocalStack


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, diagnose: Callable[[], str] = lambda: ""
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{diagnose()}")
        time.sleep(0.2)


@dataclass
class Rig:
    stack: LocalStack
    # Taken once the demo items are delivered, before any drill restarts the proxy: a proxy killed
    # mid-request cannot write that request's audit line, so later counts no longer pair up.
    startup_received: dict[str, Any] = field(default_factory=dict)
    startup_audit: list[dict[str, Any]] = field(default_factory=list)

    @property
    def options(self) -> StackOptions:
        return self.stack.options

    def controller(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The controller simulator CLI, through the inbound proxy (it trusts mitmproxy's CA)."""
        files = self.stack.files
        argv = [
            sys.executable,
            "-m",
            "simulators.controller",
            "--instance",
            str(files.instance),
            "--ca-bundle",
            str(files.ca_cert),
            *args,
        ]
        return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)

    def gateway(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The gateway simulator CLI, through the inbound proxy, signing with the stack's key ring."""
        files = self.stack.files
        argv = [
            sys.executable,
            "-m",
            "simulators.gateway",
            "--url",
            self.options.public_url + "callback",
            "--keys-dir",
            str(files.keys),
            "--ca-bundle",
            str(files.ca_cert),
            *args,
        ]
        return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)

    def jwks(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The gateway CLI's controls of the identity provider at the Acronis API simulator."""
        simulator = f"http://127.0.0.1:{self.options.acronis_port}"
        argv = [sys.executable, "-m", "simulators.gateway", "jwks", *args, "--simulator", simulator]
        return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)

    def jwks_fetches(self) -> list[dict[str, Any]]:
        """The endpoint's key fetches as the outbound proxy audited them."""
        return [
            line
            for line in self.audit()
            if line["host"] == "acronis.cloud"
            and line["method"] == "GET"
            and line["path"] == "/api/idp/v1/keys"
        ]

    def callback_users_read(self) -> subprocess.CompletedProcess[str]:
        return self.controller(
            "callback",
            "vendor.app.users_read.v1.0",
            "--login",
            "admin",
            "--password-file",
            str(self.stack.files.admin_password),
        )

    def audit(self, name: str = "audit.jsonl") -> list[dict[str, Any]]:
        path = self.stack.files.logs / name
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def outbox(self) -> dict[str, int]:
        """Outbox items by status, read straight from the SQLite file (read-only)."""
        uri = f"file:{self.stack.files.database}?mode=ro"
        with sqlite3.connect(uri, uri=True, timeout=5) as conn:
            return dict(conn.execute("SELECT status, COUNT(*) FROM outbox_item GROUP BY status").fetchall())

    def received(self) -> dict[str, Any]:
        """What the Acronis API simulator accepted (asked directly, not through the proxy)."""
        url = f"http://127.0.0.1:{self.options.acronis_port}/_sim/received"
        response = requests.get(url, timeout=5)
        response.raise_for_status()
        return response.json()

    def delivered_everything(self) -> bool:
        counts = self.outbox()
        return set(counts) <= {"delivered"} and counts.get("delivered", 0) > 0

    def diagnose(self) -> str:
        worker_log = (self.stack.files.logs / "outbox-worker.log").read_text().splitlines()[-15:]
        return f"outbox: {self.outbox()}\nworker log tail:\n" + "\n".join(worker_log)


@contextmanager
def running_rig(data_dir: Path, **options: Any) -> Iterator[Rig]:
    """The whole stack on free ports, up until the demo items are delivered; no orphans afterwards."""
    if not MITMDUMP.exists():
        pytest.skip(f"{MITMDUMP} missing: run scripts/setup (mitmproxy lives in .venv-mitm)")
    endpoint, inbound, outbound, acronis, controller = free_ports(5)
    stack_options = StackOptions(
        data_dir=data_dir,
        endpoint_port=endpoint,
        inbound_port=inbound,
        outbound_port=outbound,
        acronis_port=acronis,
        controller_port=controller,
        demo_items=10,
        **options,
    )
    stack = LocalStack(stack_options)
    try:
        stack.up()
        rig = Rig(stack)
        wait_until(rig.delivered_everything, 60, "the demo items to be delivered", rig.diagnose)
        rig.startup_received, rig.startup_audit = rig.received(), rig.audit()
        yield rig
    finally:
        stack.down()
        leftovers = subprocess.run(["pgrep", "-f", str(data_dir)], capture_output=True, text=True)
        assert leftovers.stdout.strip() == "", f"orphan processes: {leftovers.stdout}"


@pytest.fixture(scope="package")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with running_rig(tmp_path_factory.mktemp("stack")) as rig:
        yield rig


@pytest.fixture(scope="module")
def gateway_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """The stack in gateway mode: /callback takes only the gateway's Bearer JWT (keys via the proxy)."""
    with running_rig(tmp_path_factory.mktemp("gateway-stack"), gateway="jwt") as rig:
        yield rig
