"""``scripts/run --web`` as a user runs it: one foreground process, driven from "another terminal".

The stack runs as its own process (``python -m endpoint stack --web`` on free ports, a fresh data
directory) and every step uses the commands the banner and deploy/NETWORK.md print: the flow browser
names the real hosts, the lifecycle shows the async 202 path without a warning, the proxy-down drill
(stop the outbound proxy, items wait, restart it, items delivered), a component killed with -9 is
reported and restarted, and SIGHUP (a closed terminal) leaves no process and no port behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from simulators.devstack import control
from simulators.devstack.components import MITMWEB
from simulators.devstack.layout import REPO, StackFiles
from simulators.devstack.supervisor import port_is_free
from tests.e2e.conftest import free_ports, wait_until

PORT_FLAGS = (
    "--endpoint-port",
    "--inbound-port",
    "--outbound-port",
    "--acronis-port",
    "--controller-port",
    "--inbound-web-port",
    "--outbound-web-port",
)


@dataclass
class Foreground:
    """The stack process and what it printed so far."""

    process: subprocess.Popen[str]
    files: StackFiles
    ports: dict[str, int]
    output: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.output)

    def connector(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A `connector` command from another terminal, acting on this stack's data directory."""
        argv = [sys.executable, "-m", "endpoint", *args]
        return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)

    def stack(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.connector("stack", *args, "--data-dir", str(self.files.root))

    def status(self) -> dict[str, list[str]]:
        result = self.stack("status")
        assert result.returncode == 0, result.stdout + result.stderr
        rows = [line.split() for line in result.stdout.splitlines() if line.startswith("  ")]
        return {row[0]: row[1:] for row in rows[1:]}

    def outbox(self) -> dict[str, int]:
        uri = f"file:{self.files.database}?mode=ro"
        with sqlite3.connect(uri, uri=True, timeout=5) as conn:
            return dict(conn.execute("SELECT status, COUNT(*) FROM outbox_item GROUP BY status").fetchall())

    def delivered_everything(self) -> bool:
        counts = self.outbox()
        return set(counts) <= {"delivered"} and counts.get("delivered", 0) > 0

    def printed(self, text: str, timeout: float = 30) -> None:
        wait_until(lambda: text in self.text, timeout, f"{text!r} in the stack's output", lambda: self.text)


@pytest.fixture(scope="module")
def foreground(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Foreground]:
    if not MITMWEB.exists():
        pytest.skip(f"{MITMWEB} missing: run scripts/setup (mitmproxy lives in .venv-mitm)")
    root = tmp_path_factory.mktemp("foreground") / "data"
    ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
    argv = [sys.executable, "-m", "endpoint", "stack", "--web", "--data-dir", str(root), "--demo-items", "6"]
    for flag, port in ports.items():
        argv += [flag, str(port)]
    process = subprocess.Popen(
        argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    stack = Foreground(process, StackFiles(root), ports)
    reader = threading.Thread(target=lambda: stack.output.extend(process.stdout or ()), daemon=True)
    reader.start()
    try:
        stack.printed("Live view", timeout=90)
        wait_until(stack.delivered_everything, 60, "the demo items to be delivered", lambda: stack.text)
        yield stack
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        reader.join(5)
        leftovers = subprocess.run(["pgrep", "-f", str(root)], capture_output=True, text=True)
        assert leftovers.stdout.strip() == "", f"orphan processes: {leftovers.stdout}"


def test_the_banner_names_the_drills_and_the_demo_items_really_queued(foreground: Foreground) -> None:
    text = foreground.text
    assert re.search(r"fault drills \(outbound proxy\):\s+none\n", text)
    assert re.search(r"outbox worker:\s+running \(6 fresh demo items queued for run 1\)", text)
    outbound_web = foreground.ports["--outbound-web-port"]
    assert re.search(rf"outbound flows \(mitmweb\):\s+http://127\.0\.0\.1:{outbound_web}/", text)
    foreground.printed("outbound | POST eu8-cloud.acronis.com/api/alert_manager/v1/alerts -> 200")
    assert "\033[" not in foreground.text  # not a terminal: no colour


def test_the_flow_browser_names_the_real_hosts(foreground: Foreground) -> None:
    """mitmweb's own API, as its UI reads it: the stand-in flows carry eu8-cloud.acronis.com:443."""
    url = f"http://127.0.0.1:{foreground.ports['--outbound-web-port']}/flows"
    with urllib.request.urlopen(url, timeout=10) as response:
        flows = json.load(response)
    requests_ = [flow["request"] for flow in flows if flow["request"]["method"] == "POST"]
    assert requests_ and all(
        (r["host"], r["port"], r["scheme"], r["pretty_host"])
        == ("eu8-cloud.acronis.com", 443, "https", r["host"])
        for r in requests_
    ), requests_
    assert not [flow for flow in flows if flow["request"]["host"] == "127.0.0.1"]


def test_the_lifecycle_shows_the_async_path_without_a_warning(foreground: Foreground) -> None:
    files = foreground.files
    result = subprocess.run(
        [sys.executable, "-m", "simulators.controller", "--instance", str(files.instance), "--ca-bundle",
         str(files.ca_cert), "scenario", "lifecycle", "--state", str(files.controller_state)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "provision-tenant-async: POST tenants -> 202, polling in" in result.stdout
    assert "lifecycle: 11/11 steps as expected" in result.stdout
    foreground.printed("APS-Retry-Timeout:")
    foreground.printed("(async poll)")
    warnings = [
        line for line in (files.logs / "endpoint.log").read_text().splitlines() if " WARNING " in line
    ]
    assert warnings == []  # the account is readable now: no "account ... not readable (404)"
    assert "endpoint |" not in foreground.text  # the live view printed no endpoint warning either


def test_the_proxy_down_drill_as_network_md_writes_it(foreground: Foreground) -> None:
    before = foreground.outbox().get("delivered", 0)
    stopped = foreground.stack("stop", "outbound-proxy")
    assert stopped.returncode == 0 and "outbound-proxy stopped" in stopped.stdout, stopped.stderr
    assert foreground.status()["outbound-proxy"][0] == "stopped"
    assert port_is_free("127.0.0.1", foreground.ports["--outbound-port"])
    config = str(foreground.files.config)
    queued = foreground.connector("outbox", "--config", config, "demo", "--count", "5", "--seed", "4242")
    assert queued.returncode == 0 and "5 item(s) queued" in queued.stdout, queued.stderr
    time.sleep(3)
    counts = foreground.outbox()
    assert counts.get("delivered", 0) == before and counts.get("pending") == 5  # the outbox keeps them
    foreground.printed("delivery paused")  # the worker's warning, in the live view
    restarted = foreground.stack("restart", "outbound-proxy")
    assert restarted.returncode == 0, restarted.stderr
    assert foreground.status()["outbound-proxy"][0] == "running"
    wait_until(
        foreground.delivered_everything, 60, "delivery after the proxy came back", lambda: foreground.text
    )
    assert foreground.outbox() == {"delivered": before + 5}
    assert "whole stack" not in foreground.text and foreground.process.poll() is None


def test_a_component_that_dies_is_reported_and_restarted(foreground: Foreground) -> None:
    pid = int(foreground.status()["controller-simulator"][1])
    os.kill(pid, signal.SIGKILL)
    foreground.printed("controller-simulator exited (status -9); the rest keeps running")
    assert foreground.status()["controller-simulator"][0] == "exited"
    assert foreground.status()["endpoint"][0] == "running"
    restarted = foreground.stack("restart", "controller-simulator")
    assert restarted.returncode == 0, restarted.stderr
    assert foreground.status()["controller-simulator"][0] == "running"


def test_sighup_leaves_no_process_and_no_port(foreground: Foreground) -> None:
    """Last: closing the terminal used to leave six orphans holding every port."""
    pids = [int(row[1]) for row in foreground.status().values() if row[0] == "running"]
    assert len(pids) == 6
    foreground.process.send_signal(signal.SIGHUP)
    assert foreground.process.wait(60) == 0
    for pid in pids:
        wait_until(lambda pid=pid: not _alive(pid), 10, f"process {pid} to end")
    taken = [flag for flag, port in foreground.ports.items() if not port_is_free("127.0.0.1", port)]
    assert taken == []
    assert control.running_pid(foreground.files.root) is None
    assert foreground.stack("status").returncode == 3


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
