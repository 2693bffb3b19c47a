"""run_stack without the proxies: bootstrap + endpoint up, the printed signed call works, clean stop.

The proxied stack (both mitmdumps, simulators, worker) is exercised by tests/e2e/.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from simulators.devstack import control
from simulators.devstack.stack import REPO, StackOptions, run_stack
from simulators.devstack.supervisor import port_is_free


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_stack_serves_demo_data_and_the_printed_call_works(tmp_path: Path) -> None:
    port, out, stop = free_port(), io.StringIO(), threading.Event()
    options = StackOptions(data_dir=tmp_path / "stack", endpoint_port=port, proxies=False)
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(run_stack(options, out, stop)))
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while "Press Ctrl-C" not in out.getvalue() and runner.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        text = out.getvalue()
        assert f"http://127.0.0.1:{port}/" in text, text
        command = next(line.strip() for line in text.splitlines() if "simulators.controller" in line)
        argv = shlex.split(command)
        argv[0] = sys.executable  # the printed command names .venv/bin/python
        call = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=30)
        assert call.returncode == 0 and "HTTP 200" in call.stdout, call.stdout + call.stderr
        assert "users_read_success" in call.stdout
        password_file = tmp_path / "stack" / "admin-password"
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert password_file.read_text().strip() not in text  # printed by path, never by value
    finally:
        stop.set()
        runner.join(30)
    assert result == [0]
    serve = subprocess.run(["pgrep", "-f", f"serve --config {tmp_path}"], capture_output=True, text=True)
    assert serve.stdout.strip() == ""  # no orphan endpoint


def test_stack_refuses_a_taken_port(tmp_path: Path, capsys: object) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        options = StackOptions(
            data_dir=tmp_path / "stack", endpoint_port=busy.getsockname()[1], proxies=False
        )
        assert run_stack(options, io.StringIO(), threading.Event()) == 2
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert re.search(r"port already in use: endpoint \(127\.0\.0\.1:\d+\)", err)


def _connector_stack(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "endpoint", "stack", *args]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sighup_stops_every_child_and_frees_the_ports(tmp_path: Path) -> None:
    """A closed terminal (SIGHUP) used to kill only the supervisor and leave every child running."""
    port, data = free_port(), tmp_path / "stack"
    argv = [sys.executable, "-m", "endpoint", "stack", "--no-proxies", "--data-dir", str(data)]
    supervisor = subprocess.Popen(
        [*argv, "--endpoint-port", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(supervisor.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while control.socket_path(data).exists() is False and supervisor.poll() is None:
            assert time.monotonic() < deadline, "".join(output)
            time.sleep(0.1)
        status = _connector_stack("status", "--data-dir", str(data))
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"supervisor pid {supervisor.pid}" in status.stdout
        rows = [line.split() for line in status.stdout.splitlines() if line.startswith("  endpoint ")]
        assert rows and rows[0][1] == "running"
        children = [int(rows[0][2])]
        # A second stack from the same directory is refused by name, before any port is looked at.
        again = _connector_stack("--no-proxies", "--data-dir", str(data), "--endpoint-port", str(free_port()))
        assert again.returncode == 2 and "a stack is already running from" in again.stderr
        assert f"connector stack stop --data-dir {data}" in again.stderr
        supervisor.send_signal(signal.SIGHUP)
        assert supervisor.wait(30) == 0
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait(10)
        reader.join(5)
    assert all(not _alive(pid) for pid in children), "a child outlived the SIGHUP"
    assert port_is_free("127.0.0.1", port)
    assert not control.pid_path(data).exists() and not control.socket_path(data).exists()
    gone = _connector_stack("status", "--data-dir", str(data))
    assert gone.returncode == 3 and "no stack is running" in gone.stdout


def test_stop_from_another_terminal(tmp_path: Path) -> None:
    port, data = free_port(), tmp_path / "stack"
    out, stop = io.StringIO(), threading.Event()
    options = StackOptions(data_dir=data, endpoint_port=port, proxies=False)
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(run_stack(options, out, stop)))
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while "Live view" not in out.getvalue() and runner.is_alive():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        unknown = _connector_stack("restart", "no-such-thing", "--data-dir", str(data))
        assert (
            unknown.returncode == 1
            and "no component 'no-such-thing' (components: endpoint)" in unknown.stderr
        )
        stopped = _connector_stack("stop", "--data-dir", str(data))
        assert stopped.returncode == 0 and "stack stopped" in stopped.stdout, stopped.stderr
    finally:
        stop.set()
        runner.join(30)
    assert result == [0] and port_is_free("127.0.0.1", port)
    assert "stop requested (connector stack stop)" in out.getvalue()
