"""run_stack without the proxies: bootstrap + endpoint up, the printed signed call works, clean stop.

The proxied stack (both mitmdumps, simulators, worker) is exercised by tests/e2e/.
"""

from __future__ import annotations

import io
import re
import shlex
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from endpoint.devstack.layout import StackFiles
from endpoint.devstack.stack import REPO, StackOptions, print_summary, run_stack


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


def test_the_summary_of_each_gateway_mode() -> None:
    files = StackFiles(Path("/data"))

    def summary(gateway: str) -> str:
        out = io.StringIO()
        print_summary(StackOptions(gateway=gateway), files, out)
        return out.getvalue()

    oauth, jwt, both = summary("oauth1"), summary("jwt"), summary("both")
    assert "simulators.controller" in oauth and "simulators.gateway" not in oauth
    assert "simulators.gateway" in jwt and "scenario lifecycle" in jwt  # APS routes stay OAuth 1.0
    assert "as the controller sends it" not in jwt  # /callback refuses OAuth 1.0 in this mode
    assert "Bearer JWT only" in jwt and "acronis.cloud" in jwt
    assert "simulators.controller --instance /data/app_instance.json --ca-bundle" in both
    assert "simulators.gateway" in both
