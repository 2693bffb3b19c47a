"""Smoke test: a real mitmdump with audit + stand-ins routes http and CONNECT traffic and audits it."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

MITMDUMP = Path(sys.executable).with_name("mitmdump")
LISTENING = re.compile(r"proxy listening at (?:\[[^\]]*\]|[^\s:]+):(\d+)")
SECRET = "S3cr3t-smoke"


class Recorder(BaseHTTPRequestHandler):
    """The simulator: answers JSON and remembers the raw request line and Host header it got."""

    seen: list[tuple[str, str | None]]

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.seen.append((self.path, self.headers.get("Host")))
        body = b'{"simulator": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def simulator() -> Iterator[tuple[int, list[tuple[str, str | None]]]]:
    seen: list[tuple[str, str | None]] = []
    handler = type("Handler", (Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def running_mitmdump(args: list[str], confdir: Path) -> Iterator[int]:
    """Run mitmdump on a free loopback port and yield that port; always stopped and reaped afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    command = [
        str(MITMDUMP),
        *"--listen-host 127.0.0.1 --listen-port 0".split(),
        "--set",
        f"confdir={confdir}",
    ]
    proc = subprocess.Popen(
        command + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()], daemon=True)
    reader.start()
    try:
        yield wait_for_port(proc, lines)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
        if proc.stdout:
            proc.stdout.close()


def wait_for_port(proc: subprocess.Popen[str], lines: queue.Queue[str], timeout: float = 15) -> int:
    """The port from mitmdump's "proxy listening at" line; fail with its output if it exits or stalls."""
    output = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        output.append(line)
        if match := LISTENING.search(line):
            return int(match.group(1))
    raise AssertionError("mitmdump did not start:\n" + "".join(output))


@pytest.mark.timeout(30)
def test_mitmdump_routes_to_standin_and_audits(tmp_path: Path, mitm_dir: Path, simulator) -> None:
    port, seen = simulator
    audit_log = tmp_path / "audit.jsonl"
    args = ["-s", str(mitm_dir / "audit.py"), "-s", str(mitm_dir / "standins.py")]
    for option in (f"standins=acronis.example.com=http://127.0.0.1:{port}", "audit_allow=acronis.example.com",
                   f"audit_log={audit_log}"):  # fmt: skip
        args += ["--set", option]
    path = f"/api/2/alerts?access_token={SECRET}&q=%2Fx+y"
    with running_mitmdump(args, tmp_path) as proxy_port:
        proxy = f"http://127.0.0.1:{proxy_port}"
        tls = ssl.create_default_context(cafile=str(tmp_path / "mitmproxy-ca-cert.pem"))
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({"http": proxy, "https": proxy}),
            urllib.request.HTTPSHandler(context=tls),
        )
        for scheme in ("http", "https"):  # https: CONNECT, then TLS intercepted with mitmproxy's CA
            request = urllib.request.Request(
                f"{scheme}://acronis.example.com{path}", headers={"Authorization": f"Bearer {SECRET}"}
            )
            with opener.open(request, timeout=10) as response:
                assert json.load(response) == {"simulator": True}
        with pytest.raises(urllib.error.HTTPError) as blocked:
            opener.open("http://elsewhere.example.org/", timeout=10)
        blocked.value.close()
        assert blocked.value.code == 403

    assert seen == [(path, "acronis.example.com"), (path, "acronis.example.com")]
    text = audit_log.read_text()
    assert SECRET not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert [
        (x["method"], x["scheme"], x["host"], x["port"], x["status"], x["answered_by"]) for x in lines
    ] == [
        ("GET", "http", "acronis.example.com", 80, 200, "stand-in"),
        ("CONNECT", None, "acronis.example.com", 443, 200, "stand-in"),
        ("GET", "https", "acronis.example.com", 443, 200, "stand-in"),
        ("GET", "http", "elsewhere.example.org", 80, 403, "blocked"),
    ]
    assert lines[0]["path"] == "/api/2/alerts?access_token=[redacted]&q=%2Fx+y"
    assert lines[0]["standin"] == f"http://127.0.0.1:{port}"
    assert lines[0]["req_headers"]["Authorization"] == "[redacted]"
