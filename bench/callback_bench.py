"""Signed-callback benchmark: bare Tornado vs the endpoint serving signed, authenticated users_read.

    .venv/bin/python -m bench.callback_bench [--requests 20000] [--connections 32]
    .venv/bin/python -m bench.callback_bench --matrix     # SQLite and PostgreSQL, 1 and 2 processes

One run, one machine, one load generator (bench/loadgen.py) for every server. The endpoint runs as
`python -m endpoint serve` with production argon2 parameters, an organization of 50 users, every
request freshly signed (its own nonce) and access logging on at INFO into a file. Prints requests/s,
p50/p99 latency and peak RSS (whole process tree) per configuration, and the ratio to bare Tornado.
Targets (1 process, SQLite): ratio >= 0.5, p99 <= 30 ms, RSS <= 100 MB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.callback_data import PUBLIC_URL, seeded_database, users_read_request
from bench.loadgen import LoadResult, run_load
from bench.processes import free_port, peak_rss_mb, reset_peak_rss, wait_ready
from tests.dbutil import unreachable_reason

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Measurement:
    label: str
    result: LoadResult
    steady_rss: float  # peak RSS during the measured run (sum over the process tree)
    lifetime_rss: float  # including the warm-up's first argon2 verify (64 MiB per process)


def measure(
    label: str,
    command: list[str],
    port: int,
    make_payloads: Callable[[int], list[bytes]],
    requests: int,
    connections: int,
    log_path: Path,
) -> Measurement:
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log)
    try:
        wait_ready(port)
        run_load("127.0.0.1", port, make_payloads(400), connections)  # warm-up: every process verifies once
        lifetime = peak_rss_mb(process.pid)
        payloads = make_payloads(requests)
        reset_peak_rss(process.pid)
        result = run_load("127.0.0.1", port, payloads, connections)
        steady = peak_rss_mb(process.pid)
        return Measurement(label, result, steady, max(lifetime, steady))
    finally:
        process.terminate()
        process.wait(20)


def endpoint_run(label: str, backend: str, workers: int, args: argparse.Namespace, tmp: Path) -> Measurement:
    port = free_port()
    with seeded_database(backend, tmp / label.replace(" ", "-")) as db_url:
        command = [
            sys.executable,
            "-m",
            "endpoint",
            "serve",
            "--db",
            db_url,
            "--public-url",
            PUBLIC_URL,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        command += [f"--set={item}" for item in args.set]
        return measure(
            label,
            command,
            port,
            lambda n: [users_read_request(f"127.0.0.1:{port}") for _ in range(n)],
            args.requests,
            args.connections,
            tmp / f"{label.replace(' ', '-')}.log",
        )


def configurations(args: argparse.Namespace) -> list[tuple[str, str, int]]:
    if not args.matrix:
        return [(f"endpoint {args.backend} x{args.workers}", args.backend, args.workers)]
    runs = [("endpoint sqlite x1", "sqlite", 1), ("endpoint sqlite x2", "sqlite", 2)]
    reason = unreachable_reason("postgresql")
    if reason:
        print(f"PostgreSQL runs skipped: {reason}")
    else:
        runs += [("endpoint postgresql x1", "postgresql", 1), ("endpoint postgresql x2", "postgresql", 2)]
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "mysql"), default="sqlite")
    parser.add_argument("--workers", type=int, default=1, help="endpoint processes")
    parser.add_argument("--matrix", action="store_true", help="SQLite and PostgreSQL, 1 and 2 processes")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="extra endpoint setting (repeatable), e.g. server.db_threads=2",
    )
    args = parser.parse_args()
    print(
        f"{args.requests} pre-signed requests per run, {args.connections} connections, "
        f"{os.cpu_count()} CPU cores"
    )
    with tempfile.TemporaryDirectory(prefix="callback-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        port = free_port()
        bare = measure(
            "bare Tornado JSON handler",
            [sys.executable, "-m", "bench.bare_tornado", str(port)],
            port,
            lambda n: [users_read_request(f"127.0.0.1:{port}")] * n,
            args.requests,
            args.connections,
            tmp / "bare.log",
        )
        runs = [
            endpoint_run(label, backend, workers, args, tmp)
            for label, backend, workers in configurations(args)
        ]
    report(bare, runs)
    ok = all(m.result.statuses == {200: m.result.requests} and m.result.errors == 0 for m in runs)
    return 0 if ok else 1


def report(bare: Measurement, runs: list[Measurement]) -> None:
    print(
        f"{'configuration':<27}{'req/s':>8}{'ratio':>7}{'p50 ms':>9}{'p99 ms':>9}{'RSS MB':>9}"
        f"{'(lifetime)':>11}  statuses"
    )
    for m in [bare, *runs]:
        r = m.result
        ratio = r.rps / bare.result.rps if bare.result.rps else 0.0
        print(
            f"{m.label[:26]:<27}{r.rps:>8.0f}{ratio:>7.2f}{r.p50:>9.2f}{r.p99:>9.2f}{m.steady_rss:>9.1f}"
            f"{m.lifetime_rss:>11.1f}  {r.statuses}"
        )
    first = runs[0]
    verdict = {True: "PASS", False: "FAIL"}
    ratio = first.result.rps / bare.result.rps if bare.result.rps else 0.0
    print(
        f"targets for '{first.label}': ratio {ratio:.2f} >= 0.5 {verdict[ratio >= 0.5]}; "
        f"p99 {first.result.p99:.1f} ms <= 30 {verdict[first.result.p99 <= 30]}; "
        f"RSS under load {first.steady_rss:.0f} MB <= 100 {verdict[first.steady_rss <= 100]} "
        f"(lifetime peak {first.lifetime_rss:.0f} MB: each process's first argon2id verify allocates 64 MiB)"
    )


if __name__ == "__main__":
    sys.exit(main())
