"""Shared by the soak and the fault drills: their data, signed requests, answers, and the endpoint process.

The requests are raw HTTP/1.1 bytes (``bench.loadgen.build_request``), each freshly signed with its own
nonce for the public URL, as the controller signs them. ``Endpoint`` runs ``python -m endpoint serve`` as
a real process tree; ``tree_sample`` and ``LogMeter`` read what it costs from /proc and its log file.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.callback_data import PASSWORD, PUBLIC_URL, TENANT
from bench.loadgen import build_request
from bench.processes import process_tree, wait_ready
from endpoint.auth.passwords import make_hasher
from endpoint.config.sections import AuthSettings
from models import ApsInstance, User, init_database
from models.db import DatabaseSettings
from simulators.controller.server import ControllerServer
from tests.support.builders import (
    CONSUMER_KEY,
    CONSUMER_SECRET,
    create_customer,
    create_org,
    cyberapp_auth,
    map_org,
    sign,
)
from tests.support.simulator_processes import make_tls

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = "5d1e4c2a-8f3b-4a6d-9c7e-1b2a3c4d5e6f"
APP_TYPE = "http://vendor.example.com/acronis-connector/app/1.0"
TENANT_TYPE = "http://vendor.example.com/acronis-connector/tenant/1.0"
USER_TYPE = "http://vendor.example.com/acronis-connector/user/1.0"
VICTIM, VICTIM_PASSWORD = "guessed-user", "victim-password-1"
# Writes go to a customer of their own: users_read keeps answering the same 50 users all run long.
WRITE_TENANT = "7e5d4c3b-2a19-4f08-9e7d-6c5b4a392817"
PR_SET_CHILD_SUBREAPER = 36


def prepare(url: str, controller_uri: str) -> None:
    """On top of the benchmark's seed: the write customer, a throttle victim with a password, and an APS
    instance bound to the consumer key, pinned to ``controller_uri``."""
    database = init_database(DatabaseSettings(url=url))
    with database.connection_context():
        customer = User.get(User.login == "user00").organization
        admin = User.get(User.login == "admin")
        map_org(create_customer("Writes", admin.organization), WRITE_TENANT)
        User.create(
            login=VICTIM,
            name="Victim",
            email="victim@example.com",
            organization=customer,
            password_hash=make_hasher(AuthSettings()).hash(VICTIM_PASSWORD),
        )
        ApsInstance.create(
            instance_id=INSTANCE,
            aps_id=INSTANCE,
            aps_type=APP_TYPE,
            controller_uri=controller_uri,
            consumer_key=CONSUMER_KEY,
            organization=create_org("APS provider partner"),
        )
    database.close_all()


def callback(
    host: str,
    name: str,
    payload: dict[str, Any] | None = None,
    *,
    login: str = "admin",
    password: str = PASSWORD,
    tenant: str = TENANT,
    request_id: str | None = None,
) -> bytes:
    """``POST /callback`` for callback ``name`` (``vendor.app.users_read.v1.0``, ``a.p.enablement...``)."""
    custom = not name.startswith("a.p.")
    envelope: dict[str, Any] = {
        "type": "cti.a.p.acgw.request.v1.0~" + (name if custom or payload else "a.p.empty.v1.0"),
        "request_id": request_id or str(uuid.uuid4()),
        "created_at": "2026-11-22T10:00:00+00:00",
        "context": {
            "callback_id": "cti.a.p.acgw.callback.v1.0~" + name,
            "endpoint_id": "cti.a.p.acgw.endpoint.v1.0~vendor.app.endpoint.v1.0",
            "tenant_id": tenant,
            "datacenter_url": "https://eu8-cloud.acronis.com",
        },
    }
    if payload is not None:
        envelope["payload"] = payload
    user = {"X-CyberApp-Auth": cyberapp_auth(login, password)}
    headers = sign("POST", PUBLIC_URL + "callback", user, key=CONSUMER_KEY, secret=CONSUMER_SECRET)
    return build_request("POST", "/callback", host, headers, json.dumps(envelope).encode())


def user_write(host: str, request_id: str) -> bytes:
    """A user_write into the write customer whose login is derived from ``request_id`` (``w<hex>``)."""
    login = "w" + request_id.replace("-", "")
    payload = {"login": login, "name": "Soak", "email": f"{login}@example.com"}
    return callback(host, "vendor.app.user_write.v1.0", payload, tenant=WRITE_TENANT, request_id=request_id)


def aps(host: str, method: str, path: str, body: dict[str, Any] | None, controller_uri: str) -> bytes:
    """An APS request of the bound instance (``path`` like ``/tenants``), signed as the controller does."""
    headers = {
        "APS-Instance-ID": INSTANCE,
        "APS-Controller-URI": controller_uri,
        "APS-Transaction-ID": "tx-" + uuid.uuid4().hex[:12],
        "Content-Type": "application/json",
    }
    signed = sign(method, PUBLIC_URL.rstrip("/") + path, headers, key=CONSUMER_KEY, secret=CONSUMER_SECRET)
    return build_request(method, path, host, signed, b"" if body is None else json.dumps(body).encode())


def tenant_body(aps_id: str) -> dict[str, Any]:
    return {"aps": {"type": TENANT_TYPE, "id": aps_id}, "name": f"t-{aps_id}"}


def user_body(aps_id: str, tenant_id: str) -> dict[str, Any]:
    login = "u" + aps_id.replace("-", "")
    return {
        "aps": {"type": USER_TYPE, "id": aps_id},
        "tenant": {"aps": {"id": tenant_id}},
        "login": login,
        "email": f"{login}@example.com",
    }


@dataclass(frozen=True)
class Answer:
    status: int
    close: bool  # the server closes the connection after it (a refusal on the headers does)
    body: bytes


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    """:raise asyncio.IncompleteReadError, ConnectionError: the connection ended before a whole answer."""
    head = await reader.readuntil(b"\r\n\r\n")
    length, close = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
        elif name.lower() == b"connection" and value.strip().lower() == b"close":
            close = True
    body = await reader.readexactly(length) if length else b""
    return Answer(int(head[9:12]), close, body)


@contextmanager
def controller(tmp: Path) -> Iterator[tuple[ControllerServer, str]]:
    """The APS controller simulator over TLS on loopback, trusting our key; yields it and its CA file."""
    tls = make_tls(tmp)
    server = ControllerServer(tls=(tls.cert_pem, tls.key_pem)).start()
    server.trust(CONSUMER_KEY, CONSUMER_SECRET)
    try:
        yield server, tls.ca_pem
    finally:
        server.stop()


class Endpoint:
    """``python -m endpoint serve`` on ``url`` as a process tree, its output appended to ``log_path``."""

    def __init__(
        self,
        url: str,
        port: int,
        workers: int,
        log_path: Path,
        settings: list[str] | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.command = [sys.executable, "-m", "endpoint", "serve", "--db", url, "--public-url", PUBLIC_URL]
        self.command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        self.command += [f"--set={item}" for item in settings or []]
        self.port, self.workers, self.log_path = port, workers, log_path
        self.environ = {**os.environ, **(environ or {})}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 30) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.environ, stdout=log, stderr=log)
        wait_ready(self.port, timeout)
        deadline = time.monotonic() + timeout
        while self.workers > 1 and len(self.worker_pids()) < self.workers and time.monotonic() < deadline:
            time.sleep(0.05)

    def worker_pids(self) -> list[int]:
        """The serving children (with --workers); the parent only supervises."""
        return [pid for pid in process_tree(self.pid) if pid != self.pid]

    def kill_tree(self) -> list[int]:
        """SIGKILL every process of the tree at once (a crash of the whole service); returns the pids."""
        pids = process_tree(self.pid)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert self.process is not None
        self.process.wait()
        reap(pids)
        return pids

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM (the parent forwards it and every worker drains), SIGKILL the tree if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        pids = process_tree(self.pid)
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_tree()
            return None
        reap(pids)
        return code


def become_subreaper() -> None:
    """Workers orphaned by a killed supervisor are re-parented to us (not to PID 1), so we can reap them."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def reap(pids: list[int], timeout: float = 10) -> None:
    """Wait until none of ``pids`` is alive; reap the ones that were re-parented to us."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    break
            except ChildProcessError:  # not our child: wait until it is gone
                if not Path(f"/proc/{pid}").exists() or _zombie(pid):
                    break
            time.sleep(0.02)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


@dataclass(frozen=True)
class TreeSample:
    rss_mb: float  # VmRSS summed over the tree
    anon_mb: float  # RssAnon: the heap, without mapped files and shared memory
    peak_mb: float  # VmHWM summed over the tree: each process's peak so far
    fds: int  # entries of /proc/<pid>/fd summed over the tree
    processes: int


def tree_sample(pid: int) -> TreeSample:
    rss_kb = anon_kb = peak_kb = fds = processes = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text().splitlines()
            count = len(os.listdir(f"/proc/{member}/fd"))
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kb += int(line.split()[1])
            elif line.startswith("RssAnon:"):
                anon_kb += int(line.split()[1])
            elif line.startswith("VmHWM:"):
                peak_kb += int(line.split()[1])
        fds += count
        processes += 1
    return TreeSample(rss_kb / 1024, anon_kb / 1024, peak_kb / 1024, fds, processes)


class LogMeter:
    """Bytes and lines of a growing log file, read incrementally (no line is counted twice), and lines by
    level and logger (the text format: ``<time> <LEVEL> <logger>: <message>``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bytes = 0
        self.lines = 0
        self.tracebacks = 0
        self.by_logger: Counter[str] = Counter()
        self._partial = b""

    def read(self) -> tuple[int, int]:
        """(bytes, lines) so far."""
        try:
            with self.path.open("rb") as log:
                log.seek(self.bytes)
                chunk = log.read()
        except FileNotFoundError:
            return 0, 0
        self.bytes += len(chunk)
        self.lines += chunk.count(b"\n")
        *whole, self._partial = (self._partial + chunk).split(b"\n")
        for line in whole:
            fields = line.split(b" ", 3)
            if line.startswith(b"Traceback (most recent call last)"):
                self.tracebacks += 1
            if len(fields) > 2 and fields[2].endswith(b":"):
                self.by_logger[(fields[1] + b" " + fields[2][:-1]).decode("ascii", "replace")] += 1
            else:
                self.by_logger["(other)"] += 1
        return self.bytes, self.lines


def keep_log(path: Path, directory: str | None, name: str) -> None:
    """Copy a log the run is about to delete into ``directory`` (``--log-dir``), when given."""
    if directory is not None and path.exists():
        Path(directory).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(directory) / name)
        print(f"kept {Path(directory) / name}")


def print_verdicts(verdicts: list[tuple[bool, str]]) -> int:
    """One PASS/FAIL line per verdict; the exit status (1 when one failed)."""
    for ok, text in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for ok, _ in verdicts) else 1


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
