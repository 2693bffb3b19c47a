"""The PID file and the control socket through which ``connector stack status|stop|restart`` act."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from simulators.devstack import control
from simulators.devstack.control import ControlError, ControlServer, PidLock


def test_one_supervisor_per_data_directory(tmp_path: Path) -> None:
    first = PidLock(tmp_path)
    first.acquire()
    try:
        assert control.running_pid(tmp_path) == os.getpid()
        with pytest.raises(ControlError, match=rf"already running from {tmp_path} \(pid {os.getpid()}\)"):
            PidLock(tmp_path).acquire()
    finally:
        first.release()
    assert control.running_pid(tmp_path) is None and not control.pid_path(tmp_path).exists()
    again = PidLock(tmp_path)
    again.acquire()  # free again
    again.release()


def test_a_killed_supervisors_pid_file_does_not_count(tmp_path: Path) -> None:
    """The lock dies with its process: a file left behind by kill -9 never blocks the next start."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from simulators.devstack.control import PidLock;"
            f"PidLock(Path({str(tmp_path)!r})).acquire(); print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert control.running_pid(tmp_path) == holder.pid
        with pytest.raises(ControlError):
            PidLock(tmp_path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        if holder.stdout:
            holder.stdout.close()
    assert control.pid_path(tmp_path).exists()  # left behind...
    assert control.running_pid(tmp_path) is None  # ...and not taken for a running stack
    lock = PidLock(tmp_path)
    lock.acquire()
    lock.release()


def _answer_in_background(server: ControlServer, handled: list[str]) -> threading.Thread:
    """Stands in for the supervisor's main loop: answers every request it receives."""

    def loop() -> None:
        while True:
            request = server.requests.get()
            handled.append(request.op)
            if request.op == "quit":
                request.reply(True)
                return
            request.reply(request.op == "status", f"{request.op} {request.args.get('component')}", n=1)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("depth", [1, 12], ids=["short-path", "path-longer-than-a-unix-socket-allows"])
def test_requests_reach_the_main_loop_and_answers_come_back(tmp_path: Path, depth: int) -> None:
    root = tmp_path.joinpath(*["a-rather-long-directory-name"] * depth)
    root.mkdir(parents=True)
    server = ControlServer(root)
    server.start()
    handled: list[str] = []
    loop = _answer_in_background(server, handled)
    try:
        assert oct(control.socket_path(root).stat().st_mode & 0o777) == "0o600"
        assert control.send(root, "status") == {"ok": True, "message": "status None", "n": 1}
        answer = control.send(root, "restart", component="outbound-proxy", faults=["407@*"])
        assert answer["ok"] is False and answer["message"] == "restart outbound-proxy"
        control.send(root, "quit")
        loop.join(5)
    finally:
        server.close()
    assert handled == ["status", "restart", "quit"]
    assert not control.socket_path(root).exists()
    with pytest.raises(ControlError, match="no stack is running"):
        control.send(root, "status")


def test_a_request_nobody_answers_times_out_with_a_message(tmp_path: Path) -> None:
    server = ControlServer(tmp_path, answer_timeout=0.2)
    server.start()
    try:
        started = time.monotonic()
        answer = control.send(tmp_path, "status")
        assert answer == {"ok": False, "message": "the stack did not answer in time"}
        assert time.monotonic() - started < 5
    finally:
        server.close()
