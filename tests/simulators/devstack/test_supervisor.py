"""Supervisor: children start in their own session, readiness is awaited, stop_all leaves no orphans."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulators.devstack.supervisor import StackError, Supervisor, port_is_free, require_free_ports


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_start_waits_for_the_port_and_stop_all_kills_the_whole_tree(tmp_path: Path) -> None:
    port = free_port()
    # The child spawns a grandchild that ignores SIGTERM: only the process-group kill can reach it.
    script = (
        "import subprocess, sys, http.server, socketserver;"
        "g = subprocess.Popen([sys.executable, '-c', 'import signal, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); print(flush=True); time.sleep(600)']);"
        f"open({str(tmp_path / 'grandchild')!r}, 'w').write(str(g.pid));"
        f"socketserver.TCPServer(('127.0.0.1', {port}), http.server.SimpleHTTPRequestHandler).serve_forever()"
    )
    supervisor = Supervisor(tmp_path / "logs")
    child = supervisor.start("web", [sys.executable, "-c", script], ready_port=("127.0.0.1", port))
    assert not port_is_free("127.0.0.1", port)
    deadline = time.monotonic() + 5
    while not (tmp_path / "grandchild").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = int((tmp_path / "grandchild").read_text())
    supervisor.stop_all(timeout=2)
    assert child.process.poll() is not None
    deadline = time.monotonic() + 5
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild)
    assert (tmp_path / "logs" / "web.log").exists()


def test_a_child_that_dies_early_is_reported_with_its_log(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path)
    with pytest.raises(StackError, match=r"exited with status 3.*web\.log"):
        supervisor.start(
            "web",
            [sys.executable, "-c", "import sys; sys.exit(3)"],
            ready_port=("127.0.0.1", free_port()),
            timeout=5,
        )
    supervisor.stop_all()


def test_never_listening_times_out(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path)
    with pytest.raises(StackError, match="not listening"):
        supervisor.start(
            "idle",
            [sys.executable, "-c", "import time; time.sleep(30)"],
            ready_port=("127.0.0.1", free_port()),
            timeout=0.5,
        )
    supervisor.stop_all(timeout=2)


def test_taken_ports_are_named() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(StackError, match=rf"endpoint \(127\.0\.0\.1:{port}\)"):
            require_free_ports({"endpoint": ("127.0.0.1", port), "other": ("127.0.0.1", free_port())})


def test_first_exited(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path)
    supervisor.start("quick", [sys.executable, "-c", "pass"])
    supervisor.start("slow", [sys.executable, "-c", "import time; time.sleep(30)"])
    deadline = time.monotonic() + 5
    while supervisor.first_exited() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    exited = supervisor.first_exited()
    assert exited is not None and exited.name == "quick"
    supervisor.stop_all(timeout=2)


def _time_wait_on(port: int) -> None:
    """Leave a connection in TIME_WAIT on ``port``'s side: the server end closes first, then stops."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the active close: this end (local port = ``port``) goes to TIME_WAIT
        client.recv(1)  # sees the FIN...
        client.close()  # ...and answers it, so the server end moves on from FIN_WAIT to TIME_WAIT


def _in_time_wait(port: int) -> bool:
    """/proc/net/tcp lists a socket of local port ``port`` in state 06 (TIME_WAIT)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(int(row.split()[1].split(":")[1], 16) == port and row.split()[3] == "06" for row in rows)


def test_a_port_in_time_wait_is_free() -> None:
    """A restart right after Ctrl-C: the old run's connections linger in TIME_WAIT for about 60 s."""
    port = free_port()
    _time_wait_on(port)
    assert _in_time_wait(port)  # the situation is real...
    with socket.socket() as plain:  # ...and a probe without SO_REUSEADDR would call the port taken
        with pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))
    assert port_is_free("127.0.0.1", port)
    require_free_ports({"endpoint": ("127.0.0.1", port)})  # no StackError
    with socket.socket() as server:  # and a server really can listen there now
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        assert not port_is_free("127.0.0.1", port)  # while one listens, the port is taken


def test_children_die_with_a_supervisor_that_is_killed(tmp_path: Path) -> None:
    """kill -9 leaves no chance to clean up: the kernel's parent-death signal stops the children."""
    script = (
        "import sys, time; from pathlib import Path; from simulators.devstack.supervisor import Supervisor;"
        f"s = Supervisor(Path({str(tmp_path)!r}));"
        "c = s.start('sleeper', [sys.executable, '-c', 'import time; time.sleep(120)']);"
        "print(c.process.pid, flush=True); time.sleep(120)"
    )
    supervisor = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert supervisor.stdout is not None
        child = int(supervisor.stdout.readline())
        assert alive(child)
    finally:
        supervisor.kill()
        supervisor.wait(10)
        if supervisor.stdout:
            supervisor.stdout.close()
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child), "the child outlived its supervisor"


def test_newly_exited_reports_each_death_once(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path)
    supervisor.start("quick", [sys.executable, "-c", "pass"])
    supervisor.start("slow", [sys.executable, "-c", "import time; time.sleep(30)"])
    deadline = time.monotonic() + 5
    seen: list[str] = []
    while not seen and time.monotonic() < deadline:
        seen = [child.name for child in supervisor.newly_exited()]
        time.sleep(0.05)
    assert seen == ["quick"] and supervisor.newly_exited() == []
    assert supervisor.get("quick") is not None  # a dead child stays listed until restarted
    supervisor.stop_all(timeout=2)
