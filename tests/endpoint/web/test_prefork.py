"""run_workers: real children, stop signals forwarded, crashes restarted; replays refused across processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import peewee as pw
import pytest
import requests

from models.db import DatabaseSettings
from tests.support.builders import DATACENTER, PUBLIC_URL, cyberapp_auth, sign
from tests.support.live_endpoint import CALLBACK_PREFIX, ENDPOINT_ID
from tests.support.simulator_processes import free_port, wait_until
from tests.support.two_partner_tenancy import ADMIN_PASSWORD, TENANT_A, build_tenancy

ROOT = Path(__file__).resolve().parents[3]

PROGRAM = textwrap.dedent(
    """
    import os, signal, sys, time
    sys.path.insert(0, {root!r})
    import endpoint.web.prefork as prefork
    prefork.RESTART_DELAY = 0.1
    out = {out!r}

    def child(index):
        marker = os.path.join(out, f"{{index}}-{{os.getpid()}}")
        open(marker, "w").close()
        stopped = []
        signal.signal(signal.SIGTERM, lambda *a: stopped.append(1))
        if index == 1 and len(os.listdir(out)) < 3:
            return 7  # the first incarnation of worker 1 crashes
        while not stopped:
            time.sleep(0.02)
        open(marker + ".drained", "w").close()
        return 0

    sys.exit(prefork.run_workers(2, child))
    """
)


def pids_in(out: Path) -> list[int]:
    return [int(p.name.split("-")[1]) for p in out.iterdir() if not p.name.endswith(".drained")]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_restart_after_a_crash_and_all_drain_on_sigterm(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    parent = subprocess.Popen([sys.executable, "-c", PROGRAM.format(root=str(ROOT), out=str(out))])
    try:
        deadline = time.monotonic() + 10
        while len(pids_in(out)) < 3 and time.monotonic() < deadline:  # 2 workers + 1 restart
            time.sleep(0.05)
        assert len(pids_in(out)) == 3, "the crashed worker was not restarted"
        time.sleep(0.2)
        parent.send_signal(signal.SIGTERM)  # only the parent is signalled: it must forward
        assert parent.wait(10) == 0
    finally:
        if parent.poll() is None:
            parent.kill()
    drained = [p for p in out.iterdir() if p.name.endswith(".drained")]
    assert len(drained) == 2  # both live workers got the forwarded stop and finished their work
    assert not [pid for pid in pids_in(out) if alive(pid)]  # no orphans


@pytest.mark.skipif(sys.platform != "linux", reason="fork semantics checked on Linux")
def test_run_workers_returns_in_the_parent_only(tmp_path: Path) -> None:
    program = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); import endpoint.web.prefork as p;"
        "import os; code = p.run_workers(1, lambda i: 0); print('parent', code, flush=True)"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=20)
    assert result.stdout.strip() == "parent 0"


# -- replay protection across serving processes on one database -------------------------------------
ROUNDS = 50
FAST_ARGON2 = ("auth.argon2_time_cost=1", "auth.argon2_memory_kib=1024", "auth.argon2_parallelism=1")


@contextmanager
def serving_processes(
    db_settings: DatabaseSettings, log_dir: Path, ports: list[int], workers: int = 1
) -> Iterator[list[str]]:
    """``python -m endpoint serve`` on each port (one database, one public URL); yields the base URLs."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(log_dir), "LANG": "C.UTF-8"}
    procs = []
    for port in ports:
        command = [sys.executable, "-m", "endpoint", "serve", "--db", db_settings.url]
        command += ["--public-url", PUBLIC_URL, "--host", "127.0.0.1", "--port", str(port)]
        command += ["--workers", str(workers), *(arg for s in FAST_ARGON2 for arg in ("--set", s))]
        with (log_dir / f"serve-{port}.log").open("ab") as log:
            procs.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log))
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url in urls:
            assert wait_until(lambda url=url: healthy(url), timeout=20), f"{url} did not come up"
        yield urls
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def healthy(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def signed_enablement_read() -> tuple[bytes, dict[str, str]]:
    """One signed callback (a fresh nonce), ready to be sent any number of times."""
    envelope = {
        "type": "cti.a.p.acgw.request.v1.0~a.p.empty.v1.0",
        "request_id": str(uuid.uuid4()),
        "created_at": "2026-11-22T10:00:00Z",
        "context": {
            "callback_id": CALLBACK_PREFIX + "a.p.enablement.read.v1.0",
            "endpoint_id": ENDPOINT_ID,
            "tenant_id": TENANT_A,
            "datacenter_url": DATACENTER,
        },
    }
    auth = {"X-CyberApp-Auth": cyberapp_auth("admin", ADMIN_PASSWORD)}
    return json.dumps(envelope).encode(), sign("POST", PUBLIC_URL.rstrip("/") + "/callback", auth)


def race(targets: list[str], rounds: int) -> list[list[tuple[int, str]]]:
    """Each round sends one signed request to every target at the same instant; (status, target) each."""
    barrier = threading.Barrier(len(targets))
    sessions = [requests.Session() for _ in targets]
    results: list[list[tuple[int, str]]] = []

    def fire(index: int, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        barrier.wait(10)
        response = sessions[index].post(targets[index] + "/callback", data=body, headers=headers, timeout=10)
        return response.status_code, targets[index]

    with ThreadPoolExecutor(len(targets)) as pool:
        for n in range(rounds):
            body, headers = signed_enablement_read()
            order = [(i + n) % len(targets) for i in range(len(targets))]  # no target always goes first
            futures = [pool.submit(fire, i, body, headers) for i in order]
            results.append([future.result() for future in futures])
    for session in sessions:
        session.close()
    return results


def test_two_processes_accept_the_same_signed_request_exactly_once(
    database: pw.Database, db_settings: DatabaseSettings, tmp_path: Path
) -> None:
    build_tenancy()
    database.close()
    with serving_processes(db_settings, tmp_path, [free_port(), free_port()]) as urls:
        rounds = race(urls, ROUNDS)
    for outcome in rounds:
        assert sorted(status for status, _ in outcome) == [200, 401], outcome
    winners = Counter(url for outcome in rounds for status, url in outcome if status == 200)
    assert len(winners) == 2, winners  # both processes won some races: the race really was across them


def test_workers_on_one_port_accept_the_same_signed_request_exactly_once(
    database: pw.Database, db_settings: DatabaseSettings, tmp_path: Path
) -> None:
    build_tenancy()
    database.close()
    with serving_processes(db_settings, tmp_path, [free_port()], workers=2) as [url]:
        rounds = race([url] * 4, ROUNDS)  # four kept-alive connections, spread by the kernel
    for outcome in rounds:
        assert sorted(status for status, _ in outcome) == [200, 401, 401, 401], outcome
