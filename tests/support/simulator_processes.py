"""The Acronis API simulator and the forward proxy as real processes for tests, TLS material, settings."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "connector-3f9c0e7d"
# The real credential format has characters RFC 6749 App. B cares about: ':', '%', '+', space, non-ASCII.
CLIENT_SECRET = "s3:cr%et+ pa/ss~é"
SECRET_ENV = "SIM_CLIENT_SECRET"
PROXY_USER, PROXY_PASSWORD = "us@er", "p:ss/w%rd+ #?"
PROXY_AUTH_ENV = "SIM_PROXY_AUTH"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Tls:
    ca_pem: str
    cert_pem: str
    key_pem: str


def make_tls(directory: Path) -> Tls:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    paths = Tls(str(directory / "ca.pem"), str(directory / "cert.pem"), str(directory / "key.pem"))
    ca.cert_pem.write_to_path(paths.ca_pem)
    leaf.cert_chain_pems[0].write_to_path(paths.cert_pem)
    for extra in leaf.cert_chain_pems[1:]:
        extra.write_to_path(paths.cert_pem, append=True)
    leaf.private_key_pem.write_to_path(paths.key_pem)
    return paths


def _child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(ROOT),
    }
    env.update(extra or {})
    return env


def _start(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError(f"{args[1]} did not start")
    return proc, json.loads(line)["listening"]


def _end(proc: subprocess.Popen[str] | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Simulator:
    """``python -m simulators.acronis_api`` over TLS, plus a direct (test-only) control client."""

    def __init__(self, tls: Tls, *, token_ttl: int = 7200) -> None:
        self.tls = tls
        args = [
            "-m",
            "simulators.acronis_api",
            "--port",
            "0",
            "--tls-cert",
            tls.cert_pem,
            "--tls-key",
            tls.key_pem,
            "--client",
            f"{CLIENT_ID}:{SECRET_ENV}",
            "--token-ttl",
            str(token_ttl),
        ]
        self.proc, self.url = _start(args, _child_env({SECRET_ENV: CLIENT_SECRET}))
        self.port = int(self.url.rsplit(":", 1)[1])
        self._control = requests.Session()
        self._control.trust_env = False
        self._control.verify = tls.ca_pem

    def control(self, method: str, path: str, body: Any = None) -> Any:
        with self._control.request(method, self.url + path, json=body, timeout=5) as response:
            response.raise_for_status()
            return response.json() if response.content else None

    def received(self) -> dict[str, Any]:
        return self.control("GET", "/_sim/received")  # type: ignore[no-any-return]

    def reset(self) -> None:
        self.control("POST", "/_sim/reset")

    def faults(self, *faults: dict[str, Any]) -> None:
        self.control("POST", "/_sim/faults", {"faults": list(faults)})

    def expire_tokens(self) -> None:
        self.control("POST", "/_sim/expire-tokens")

    def close(self) -> None:
        self._control.close()
        _end(self.proc)


class ProxyProcess:
    """``python -m simulators.forward_proxy`` on a fixed port, so it can be killed and restarted in place."""

    def __init__(self, directory: Path, *, auth: bool = False) -> None:
        self.record = directory / f"proxy-{time.time_ns()}.jsonl"
        self.port = free_port()
        self.auth = auth
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = ["-m", "simulators.forward_proxy", "--port", str(self.port), "--record", str(self.record)]
        env = _child_env()
        if self.auth:
            args += ["--auth-env", PROXY_AUTH_ENV]
            env[PROXY_AUTH_ENV] = f"{PROXY_USER}:{PROXY_PASSWORD}"
        self.proc, _ = _start(args, env)

    def kill(self) -> None:
        """kill -9: every tunnel drops mid-stream, nothing is flushed."""
        _end(self.proc, signal.SIGKILL)

    def flows(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line.strip()]

    def close(self) -> None:
        _end(self.proc)


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def simulator_process(tls: Tls) -> Iterator[Simulator]:
    sim = Simulator(tls)
    yield sim
    sim.close()


@pytest.fixture
def simulator(simulator_process: Simulator) -> Simulator:
    """The shared simulator, reset for this test."""
    simulator_process.reset()
    return simulator_process


@pytest.fixture
def proxy_process(tmp_path: Path) -> Iterator[ProxyProcess]:
    proxy = ProxyProcess(tmp_path)
    yield proxy
    proxy.close()


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
