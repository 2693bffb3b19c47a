"""Outbox delivery benchmark: the same queue delivered directly and through a loopback forward proxy.

    .venv/bin/python -m bench.outbox_bench [--alerts 2000] [--workloads 2000] [--batch-size 100]
                                           [--rounds 3] [--mitmdump .venv-mitm/bin/mitmdump]

One run: the Acronis API simulator over TLS (python -m simulators.acronis_api) and a CONNECT forward
proxy on loopback (python -m simulators.forward_proxy; with --mitmdump also mitmproxy in TLS passthrough).
Each round and route starts from a fresh SQLite outbox with the items queued (not timed), then times
`Worker.run_once()` until the queue is drained: token, claims, HTTP and the delivered-status commits.
Prints items/s per kind and route, the proxy/direct time ratio (target <= 1.3: tunnels kept alive),
the HTTP requests the workloads needed (batched) and the CONNECT tunnels opened.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from endpoint.outbox.payloads import PayloadRules, QueuedItem
from endpoint.outbox.queue import enqueue
from endpoint.outbox.settings import AcronisSettings, DatacenterSettings, OutboxSettings
from endpoint.outbox.worker import Worker, build_worker
from models import init_database, migrate, unit_of_work
from models.db import DatabaseSettings
from proxy.origins import normalize_datacenter_url
from proxy.session import ProxySettings
from tests.support.builders import create_customer, create_org, make_settings, map_org
from tests.support.simulator_processes import (
    CLIENT_ID,
    CLIENT_SECRET,
    SECRET_ENV,
    ProxyProcess,
    Simulator,
    free_port,
    make_tls,
)

APP = "vendor.app"
TENANTS = [f"{n:08x}-0000-4000-8000-{n:012x}" for n in range(1, 11)]


@dataclass
class Timing:
    seconds: float
    requests: int


def items(kind: str, count: int, rules: PayloadRules, dc: str) -> list[QueuedItem]:
    built = []
    for n in range(count):
        tenant = TENANTS[n % len(TENANTS)]
        if kind == "alert":
            payload = {
                "type": f"cti.a.p.am.alert.v1.0~a.p.basic.v1.0~{APP}.malware_detected.v1.0",
                "category": f"cti.a.p.am.category.v1.0~{APP}.protection.v1.0",
                "tenantID": tenant,
                "details": {
                    "title": "Malware detected",
                    "category": "Protection",
                    "description": f"bench {n}",
                    "fields": {"Seq": str(n)},
                },
                "ResourceID": f"dev-{n}",
                "ResourceName": f"pc-{n}",
            }
        else:
            payload = {
                "type": f"cti.a.p.wm.workload.v1.0~a.p.wm.aspect.v1.0~{APP}.virtual_machine.v1.0",
                "name": f"vm-{n}",
                "attributes": {"seq": str(n)},
                "enabled": True,
                "tenant_id": tenant,
                "client_id": CLIENT_ID,
                "allowed_actions": [],
            }
        built.append(QueuedItem(kind, tenant, dc, payload))
    return built


def run_route(
    sim: Simulator, ca: str, proxy: str | None, kind: str, count: int, batch: int, workdir: Path
) -> Timing:
    """Fresh outbox with ``count`` queued items of ``kind``; time until the worker has drained it."""
    db_path = workdir / f"outbox-{time.time_ns()}.db"
    db_settings = DatabaseSettings(url=f"sqlite:///{db_path}")
    database = init_database(db_settings)
    migrate(database)
    settings = make_settings(
        database=db_settings,
        proxy=ProxySettings(url=proxy, ca_bundle=ca),
        acronis=AcronisSettings(
            datacenters=(DatacenterSettings(sim.url, CLIENT_ID, SECRET_ENV),), batch_size=batch
        ),
        outbox=OutboxSettings(spool_dir=str(workdir / "spool"), claim_limit=5000, worker_id="bench"),
    )
    with unit_of_work():
        partner = create_org("Partner")
        for n, tenant in enumerate(TENANTS):
            map_org(create_customer(f"C{n}", partner), tenant, sim.url)
        enqueue(items(kind, count, PayloadRules.from_settings(settings), normalize_datacenter_url(sim.url)))
    sim.reset()
    worker: Worker = build_worker(
        settings, {SECRET_ENV: CLIENT_SECRET}, stop=threading.Event(), with_spool=False
    )
    worker.start()
    started = time.perf_counter()
    summary = worker.run_once()
    seconds = time.perf_counter() - started
    received = sim.received()
    delivered = len(received["alerts"]) if kind == "alert" else len(received["workloads"])
    if summary.sent != count or delivered != count:
        raise SystemExit(f"{kind} via {proxy or 'direct'}: sent {summary.sent}, simulator got {delivered}")
    endpoint = "alerts" if kind == "alert" else "workloads"
    requests = sum(1 for r in received["requests"] if r["endpoint"] == endpoint)
    database.close_all()
    db_path.unlink()
    return Timing(seconds, requests)


@contextmanager
def mitmdump(path: str, workdir: Path) -> Iterator[str]:
    """mitmproxy as a plain forward proxy: CONNECT tunnels passed through (no interception)."""
    port = free_port()
    confdir = workdir / "mitm-conf"
    confdir.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [
            path,
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            str(port),
            "--set",
            f"confdir={confdir}",
            "--ignore-hosts",
            ".*",
            "-q",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("mitmdump did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.outbox_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--workloads", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="median of this many runs per route and kind")
    parser.add_argument("--mitmdump", help="also measure through this mitmdump (TLS passthrough)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="outbox-bench-"))
    tls = make_tls(workdir)
    sim = Simulator(tls)
    proxy = ProxyProcess(workdir)
    routes: dict[str, str | None] = {"direct": None, "forward proxy": proxy.url}
    try:
        with contextmanager_or_none(args.mitmdump, workdir) as mitm:
            if mitm:
                routes["mitmdump passthrough"] = mitm
            results: dict[tuple[str, str], list[Timing]] = {}
            for _ in range(args.rounds):
                for kind, count in (("alert", args.alerts), ("workload", args.workloads)):
                    for route, url in routes.items():  # interleaved, so drift hits every route alike
                        timing = run_route(sim, tls.ca_pem, url, kind, count, args.batch_size, workdir)
                        results.setdefault((kind, route), []).append(timing)
        report(results, routes, args, len(proxy.flows()), args.rounds)
    finally:
        sim.close()
        proxy.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


@contextmanager
def contextmanager_or_none(path: str | None, workdir: Path) -> Iterator[str | None]:
    if not path:
        yield None
        return
    with mitmdump(path, workdir) as url:
        yield url


def report(
    results: dict[tuple[str, str], list[Timing]],
    routes: dict[str, str | None],
    args: argparse.Namespace,
    tunnels: int,
    rounds: int,
) -> None:
    counts = {"alert": args.alerts, "workload": args.workloads}
    median = {key: statistics.median(t.seconds for t in timings) for key, timings in results.items()}
    print(
        f"outbox benchmark: {args.alerts} alerts + {args.workloads} workloads, batch size {args.batch_size}, "
        f"median of {rounds} round(s), Python {sys.version.split()[0]}"
    )
    print(f"{'kind':<9} {'route':<22} {'seconds':>8} {'items/s':>9} {'requests':>9} {'vs direct':>10}")
    for kind in ("alert", "workload"):
        for route in routes:
            seconds = median[(kind, route)]
            requests = results[(kind, route)][0].requests
            ratio = seconds / median[(kind, "direct")]
            print(
                f"{kind:<9} {route:<22} {seconds:>8.2f} {counts[kind] / seconds:>9.0f} {requests:>9} "
                f"{ratio:>10.2f}"
            )
    for route in routes:
        if route == "direct":
            continue
        total = median[("alert", route)] + median[("workload", route)]
        direct = median[("alert", "direct")] + median[("workload", "direct")]
        verdict = "ok" if total / direct <= 1.3 else "ABOVE TARGET"
        print(
            f"{route}/direct time ratio (alerts + workloads): {total / direct:.2f} (target <= 1.3: {verdict})"
        )
    print(
        f"workload requests per run: {results[('workload', 'direct')][0].requests} "
        f"(for {args.workloads} workloads); CONNECT tunnels opened by the forward proxy over "
        f"{rounds * 2} proxied runs: {tunnels}"
    )


if __name__ == "__main__":
    sys.exit(main())
