"""docs/first-15-minutes.md, run as written: its shell blocks in order, as the three terminals would.

Only the data directory (``var/first15``) and the three ports are replaced, by a temporary directory and
free ports; ``scripts/setup`` is left out (this environment is set up). The choreography -- which block
runs in which terminal, when the controller simulator moves -- follows the page; each step first
checks that its block is the one the page has there, so a reordered page fails with a message, not a hang.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.devstack.layout import REPO
from tests.e2e.conftest import free_ports, wait_until

pytestmark = pytest.mark.e2e

DOC = REPO / "docs" / "first-15-minutes.md"
_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


class Walkthrough:
    """The page's blocks with our directory and ports, and the two long-running terminals."""

    def __init__(self, data: Path, ports: list[int]) -> None:
        ours = dict(zip(("var/first15", "8190", "9290", "9291"), (str(data), *map(str, ports)), strict=True))
        text = re.sub("|".join(ours), lambda m: ours[m.group(0)], DOC.read_text(encoding="utf-8"))  # one pass
        self.blocks = _BLOCK.findall(text)
        self.ports = ports
        self.terminals: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = data.parent

    def block(self, index: int, *marks: str) -> str:
        code = self.blocks[index]
        missing = [mark for mark in marks if mark not in code]
        assert not missing, (
            f"docs/first-15-minutes.md, shell block {index}: expected {missing} in it:\n{code}"
        )
        return code

    def run(self, index: int, *marks: str, ok: bool = True) -> str:
        """A terminal-C block: its output (stdout and stderr); it must succeed unless ``ok`` is False."""
        code = self.block(index, *marks).replace("scripts/setup\n", "")
        done = subprocess.run(
            ["bash", "-eu", "-o", "pipefail", "-c", code],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = done.stdout + done.stderr
        assert (done.returncode == 0) == ok, f"block {index} exited {done.returncode}:\n{code}\n{output}"
        return output

    def start(self, terminal: str, index: int, port: int, *marks: str) -> None:
        """A terminal-A/B block, left running until ``stop``; ready once ``port`` accepts connections."""
        log = (self.logs / f"terminal-{terminal}.log").open("ab")
        self.terminals[terminal] = subprocess.Popen(
            ["bash", "-c", self.block(index, *marks)],
            cwd=REPO,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        wait_until(
            lambda: _listening(port), 30, f"terminal {terminal} (block {index}) on port {port}", self.log
        )

    def stop(self, terminal: str) -> None:
        """Ctrl-C, as the page says: SIGINT to the terminal's process group."""
        process = self.terminals.pop(terminal)
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    def log(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:] for p in sorted(self.logs.glob("terminal-*.log"))
        )


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def walkthrough(tmp_path: Path) -> Iterator[Walkthrough]:
    page = Walkthrough(tmp_path / "first15", free_ports(3))
    try:
        yield page
    finally:
        for terminal in list(page.terminals):
            page.stop(terminal)


def test_the_provider_path_works_as_written(walkthrough: Walkthrough) -> None:
    page = walkthrough
    endpoint, controller, moved = page.ports
    page.run(0, "scripts/setup", "connector.toml")
    assert "admin: admin created" in page.run(1, "connector init", "CONNECTOR_ADMIN_PASSWORD")
    page.start("A", 2, endpoint, "connector serve")
    page.start("B", 3, controller, "simulators.controller", "--create-instances", str(controller))

    assert f"registered with http://127.0.0.1:{controller}/" in page.run(4, "connector register")
    calls = page.run(5, "provision-tenant", "add-users", "users_read")
    assert "2/2 steps as expected" in calls and "HTTP 200" in calls
    received = page.run(6, "controller-received.jsonl").splitlines()
    assert received[0].endswith("POST /aps/2/applications 201 verified")
    assert received[1:] and all(line.endswith("200 verified") for line in received[1:])

    assert "new secret #2" in page.run(7, "rotate-key", "list-keys")
    time.sleep(2.5)  # a person takes longer than endpoint.secrets_refresh (2 s) to type the next command
    handed = page.run(8, "connector hand-over-key", "APS_TOKEN=")
    assert f"handed over to http://127.0.0.1:{controller}/" in handed and "now holds secret #2" in handed
    rotated = page.run(9, "add-users", "revoke-key --config").splitlines()
    assert rotated[-2].startswith(f"127.0.0.1:{controller} PUT /aps/2/resources/")
    assert rotated[-2].endswith("200 verified") and rotated[-1].startswith("secret #1 revoked")

    page.stop("B")
    page.start("B", 10, moved, "simulators.controller", str(moved))
    assert "-> 400 UNEXPECTED" in page.run(11, "read-usage", ok=False)
    repinned = page.run(12, "repin-controller", "read-usage", "add-users").splitlines()
    assert f"-> http://127.0.0.1:{moved}/" in repinned[0]
    assert any(line.endswith("-> 200 ok") for line in repinned)
    assert repinned[-1].startswith(f"127.0.0.1:{moved} PUT /aps/2/resources/")
    assert repinned[-1].endswith("200 verified")
