"""Soak: a long run of mixed signed traffic against a real endpoint, watching for drift.

    .venv/bin/python -m bench.soak                              # SQLite, 1 process, 600 s
    .venv/bin/python -m bench.soak --backend postgresql --workers 2
    .venv/bin/python -m bench.soak --duration 60                # a short run while developing

32 connections (``--connections``) keep sending, each request freshly signed and checked against the
status its kind must get: users_read / enablement.read (200), user_write of a new login (200), the APS
instance read and configure (200), 5 % with a broken signature (401), 1 % with a wrong password for a
dedicated identity (401, or 429 once its own throttle trips: never anyone else's). Every 10 s the server
tree's RSS, open descriptors and log size are sampled. Verdicts: no unexpected status, no 5xx, RSS drift
below 10 % between minute 2 and the end, descriptors flat (within 20), and the log volume per minute.
Exit status 1 when a verdict fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from bench.callback_data import PASSWORD, PUBLIC_URL, TENANT, seeded_database
from bench.loadgen import build_request
from bench.processes import free_port, process_tree, wait_ready
from endpoint.auth.passwords import make_hasher
from endpoint.settings import AuthSettings
from models import ApsInstance, User, init_database
from models.db import DatabaseSettings
from tests.factories import (
    CONSUMER_KEY,
    CONSUMER_SECRET,
    create_customer,
    create_org,
    cyberapp_auth,
    map_org,
    sign,
)

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = "5d1e4c2a-8f3b-4a6d-9c7e-1b2a3c4d5e6f"
CONTROLLER = "https://apsc.example.net:6308/"
APP_TYPE = "http://vendor.example.com/acronis-connector/app/1.0"
VICTIM, VICTIM_PASSWORD = "guessed-user", "victim-password-1"
# user_write goes to a customer of its own: users_read keeps answering the same 50 users all run long.
WRITE_TENANT = "7e5d4c3b-2a19-4f08-9e7d-6c5b4a392817"
# kind -> (share of the traffic, the statuses it may get)
MIX: dict[str, tuple[float, frozenset[int]]] = {
    "users_read": (0.50, frozenset({200})),
    "enablement_read": (0.14, frozenset({200})),
    "user_write": (0.15, frozenset({200})),
    "aps_get": (0.10, frozenset({200})),
    "aps_put": (0.05, frozenset({200})),
    "bad_signature": (0.05, frozenset({401})),
    "wrong_password": (0.01, frozenset({401, 429})),
}


def prepare(url: str) -> None:
    """The benchmark's data, a throttle victim with a password, and an APS instance bound to the key."""
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
            controller_uri=CONTROLLER,
            consumer_key=CONSUMER_KEY,
            organization=create_org("APS provider partner"),
        )
    database.close_all()


def _callback(
    host: str, name: str, payload: dict | None, login: str, password: str, tenant: str = TENANT
) -> bytes:
    custom = not name.startswith("a.p.")
    envelope = {
        "type": "cti.a.p.acgw.request.v1.0~" + (name if custom or payload else "a.p.empty.v1.0"),
        "request_id": str(uuid.uuid4()),
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


def _aps(host: str, method: str, body: dict | None) -> bytes:
    aps = {"APS-Instance-ID": INSTANCE, "APS-Controller-URI": CONTROLLER, "Content-Type": "application/json"}
    path = f"/app/{INSTANCE}"
    headers = sign(method, PUBLIC_URL.rstrip("/") + path, aps, key=CONSUMER_KEY, secret=CONSUMER_SECRET)
    return build_request(method, path, host, headers, b"" if body is None else json.dumps(body).encode())


def request_of(kind: str, host: str, rng: random.Random) -> bytes:
    if kind == "users_read":
        return _callback(host, "vendor.app.users_read.v1.0", None, "admin", PASSWORD)
    if kind == "enablement_read":
        return _callback(host, "a.p.enablement.read.v1.0", None, "admin", PASSWORD)
    if kind == "user_write":
        login = f"soak-{uuid.uuid4().hex[:12]}"
        payload = {"login": login, "name": "Soak", "email": f"{login}@example.com"}
        return _callback(host, "vendor.app.user_write.v1.0", payload, "admin", PASSWORD, WRITE_TENANT)
    if kind == "aps_get":
        return _aps(host, "GET", None)
    if kind == "aps_put":
        return _aps(host, "PUT", {"hubID": f"h{rng.randrange(1000)}"})
    if kind == "bad_signature":
        raw = _callback(host, "a.p.enablement.read.v1.0", None, "admin", PASSWORD)
        return raw.replace(b'oauth_signature="', b'oauth_signature="AAAA', 1)
    return _callback(host, "a.p.enablement.read.v1.0", None, VICTIM, "not-the-password")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, whether the server closes the connection after it: a refusal on the headers does)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length, close = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
        elif name.lower() == b"connection" and value.strip().lower() == b"close":
            close = True
    if length:
        await reader.readexactly(length)
    return int(head[9:12]), close


class Tally:
    def __init__(self) -> None:
        self.by_kind: Counter[tuple[str, int]] = Counter()
        self.unexpected: Counter[tuple[str, int]] = Counter()
        self.transport_errors = 0
        self.sent = 0


async def drive(host: str, port: int, seconds: float, connections: int, tally: Tally) -> None:
    kinds, weights = list(MIX), [share for share, _ in MIX.values()]
    deadline = time.monotonic() + seconds

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.monotonic() < deadline:
                kind = rng.choices(kinds, weights)[0]
                writer.write(request_of(kind, f"{host}:{port}", rng))
                try:
                    status, close = await read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    tally.transport_errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                tally.sent += 1
                tally.by_kind[(kind, status)] += 1
                if status not in MIX[kind][1]:
                    tally.unexpected[(kind, status)] += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker(n) for n in range(connections)))


def tree_sample(pid: int) -> tuple[float, int]:
    """(RSS MB, open descriptors) over the process tree."""
    rss_kb, fds = 0, 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss_kb += int(line.split()[1])
            fds += len(os.listdir(f"/proc/{member}/fd"))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return rss_kb / 1024, fds


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "mysql"), default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, seeded_database(args.backend, Path(tmp)) as url:
        prepare(url)
        port, log_path = free_port(), Path(tmp) / "endpoint.log"
        command = [sys.executable, "-m", "endpoint", "serve", "--db", url, "--public-url", PUBLIC_URL]
        command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)]
        with log_path.open("ab") as log:
            server = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log)
        try:
            wait_ready(port)
            return soak(server.pid, port, args, log_path)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)


def soak(pid: int, port: int, args: argparse.Namespace, log_path: Path) -> int:
    tally, samples = Tally(), []
    started = time.monotonic()

    async def run() -> None:
        load = asyncio.ensure_future(drive("127.0.0.1", port, args.duration, args.connections, tally))
        while not load.done():
            await asyncio.sleep(10)
            if load.done():
                break  # the connections are closing: not a sample of the soak
            rss, fds = tree_sample(pid)
            samples.append((time.monotonic() - started, tally.sent, rss, fds, log_path.stat().st_size))
            elapsed, sent = samples[-1][0], samples[-1][1]
            rate = sent / elapsed
            print(f"{elapsed:5.0f}s  {sent:7d} requests  {rate:6.0f} req/s  RSS {rss:6.1f} MB  fds {fds}")
        await load

    asyncio.run(run())
    return report(tally, samples, args, log_path)


def report(
    tally: Tally, samples: list[tuple[float, int, float, int, int]], args: argparse.Namespace, log: Path
) -> int:
    elapsed = samples[-1][0]
    print(
        f"\n{args.backend} x{args.workers}, {args.connections} connections, {elapsed:.0f} s, load "
        f"{os.getloadavg()[0]:.2f}: {tally.sent} requests ({tally.sent / elapsed:.0f}/s)"
    )
    for (kind, status), count in sorted(tally.by_kind.items()):
        print(f"  {kind:<16} {status}  {count}")
    after_warmup = [s for s in samples if s[0] >= min(120.0, elapsed / 5)]
    base_rss, end_rss = after_warmup[0][2], after_warmup[-1][2]
    fds = [s[3] for s in after_warmup]
    drift = (end_rss / base_rss - 1) * 100
    lines = sum(1 for _ in log.open("rb"))
    per_minute = log.stat().st_size / (elapsed / 60)
    five_xx = sum(count for (_, status), count in tally.by_kind.items() if status >= 500)
    verdicts = [
        (not tally.unexpected, f"unexpected statuses: {dict(tally.unexpected) or 0}"),
        (five_xx == 0, f"5xx answers: {five_xx}"),
        (tally.transport_errors == 0, f"transport errors: {tally.transport_errors}"),
        (end_rss <= base_rss * 1.10, f"RSS {base_rss:.1f} -> {end_rss:.1f} MB ({drift:+.1f} %, limit +10 %)"),
        (max(fds) - min(fds) <= 20, f"descriptors {min(fds)}..{max(fds)} (flat within 20)"),
        (True, f"log: {lines} lines, {per_minute / 1024:.1f} KiB per minute"),
    ]  # fmt: skip
    for ok, text in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for ok, _ in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
