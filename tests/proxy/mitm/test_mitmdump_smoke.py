"""Smoke test: a real mitmdump with audit + stand-ins routes http and CONNECT traffic and audits it."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import re
import socket
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
def running_mitmdump(args: list[str], confdir: Path, tool: Path = MITMDUMP) -> Iterator[int]:
    """Run mitmdump (or mitmweb) on a free loopback port and yield that port; always stopped and reaped
    afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    command = [
        str(tool),
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _web_flows(web_port: int, timeout: float = 10) -> list[dict]:
    """mitmweb's flow list as its UI reads it (GET /flows, JSON), once the web server answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/flows", timeout=5) as response:
                return json.load(response)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.timeout(40)
def test_mitmweb_lists_a_stand_in_flow_under_the_real_host(tmp_path: Path, mitm_dir: Path, simulator) -> None:
    """``scripts/run --web``: the flow browser shows eu8-cloud.acronis.com, not the simulator's 127.0.0.1."""
    port, seen = simulator
    web_port = _free_port()
    args = ["--web-host", "127.0.0.1", "--web-port", str(web_port), "--no-web-open-browser"]
    args += ["-s", str(mitm_dir / "audit.py"), "-s", str(mitm_dir / "standins.py")]
    args += ["--set", f"standins=acronis.example.com=http://127.0.0.1:{port}"]
    args += ["--set", f"audit_log={tmp_path / 'audit.jsonl'}"]
    with running_mitmdump(args, tmp_path, MITMDUMP.with_name("mitmweb")) as proxy_port:
        proxy = f"http://127.0.0.1:{proxy_port}"
        tls = ssl.create_default_context(cafile=str(tmp_path / "mitmproxy-ca-cert.pem"))
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({"https": proxy}), urllib.request.HTTPSHandler(context=tls)
        )
        with opener.open("https://acronis.example.com/api/2/alerts?x=1", timeout=10) as response:
            assert json.load(response) == {"simulator": True}
        flows = [flow for flow in _web_flows(web_port) if flow["request"]["method"] == "GET"]
    assert seen == [("/api/2/alerts?x=1", "acronis.example.com")]  # the simulator answered it
    [flow] = flows
    request = flow["request"]
    assert (request["scheme"], request["host"], request["port"]) == ("https", "acronis.example.com", 443)
    assert request["pretty_host"] == "acronis.example.com" and request["path"] == "/api/2/alerts?x=1"
    assert flow["response"]["status_code"] == 200


@pytest.mark.timeout(30)
def test_a_real_proxyauth_407_is_audited_as_the_proxys(tmp_path: Path, mitm_dir: Path, simulator) -> None:
    port, seen = simulator
    audit_log = tmp_path / "audit.jsonl"
    args = ["-s", str(mitm_dir / "audit.py"), "-s", str(mitm_dir / "standins.py")]
    for option in (f"standins=acronis.example.com=http://127.0.0.1:{port}", "audit_allow=acronis.example.com",
                   f"audit_log={audit_log}", "proxyauth=user:pass"):  # fmt: skip
        args += ["--set", option]
    with running_mitmdump(args, tmp_path) as proxy_port:
        proxy = f"http://127.0.0.1:{proxy_port}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}))
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open("http://acronis.example.com/api/2/alerts", timeout=10)
        refused.value.close()
        assert refused.value.code == 407
        tunnel = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=10)
        tunnel.request("CONNECT", "acronis.example.com:443", headers={"Host": "acronis.example.com:443"})
        assert tunnel.getresponse().status == 407
        tunnel.close()
    assert seen == []  # the stand-in never got anything
    lines = [json.loads(line) for line in audit_log.read_text().splitlines()]
    assert [(x["method"], x["status"], x["answered_by"], x["standin"]) for x in lines] == [
        ("GET", 407, "proxy", None),
        ("CONNECT", 407, "proxy", None),
    ]
