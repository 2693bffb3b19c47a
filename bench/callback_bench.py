"""Signed-callback benchmark: bare Tornado baselines vs the endpoint serving signed, authenticated users_read.

    .venv/bin/python -m bench.callback_bench [--requests 20000] [--connections 32] [--no-flood]
    .venv/bin/python -m bench.callback_bench --matrix     # SQLite and PostgreSQL, 1 and 2 processes

One run, one machine, one load generator for every server: wrk (apt-get install wrk) replaying pre-signed
raw requests, each sent exactly once (bench/wrk.py, bench/wrk_replay.lua), or bench/loadgen.py when wrk is
not on PATH (or --loadgen python). Two baselines: a bare Tornado handler answering tiny JSON ("ratio") and
one answering the same 50-user users_read body the endpoint sends ("ratio/50"). The endpoint runs as
`python -m endpoint serve` with production argon2 parameters, an organization of 50 users, every request
freshly signed (its own nonce) and access logging on at INFO into a file. Per configuration: requests/s,
ratios, p50/p99 latency, server CPU ms per request (user, system, total) and voluntary context switches
per request (whole process tree, every thread, from /proc, measured run only), peak RSS under load and
over the lifetime. Last (--flood, default on), a SQLite x1 process of its own: measured, then 2 waves of
1,000 connections each pushing a 1 MiB garbage-authorized POST held ~2 s (bench/flood.py), then the measured
load again. The bare Tornado x2 row (when a configuration has 2 processes) is what the machine itself gains.
Targets (1 SQLite process, 32 connections): ratio >= 0.35 x tiny bare Tornado (aim 0.5), p99 <= 30 ms,
<= 2 voluntary context switches per request, RSS <= 100 MB under load; PostgreSQL x1 ratio >= 0.2;
SQLite x2 >= 1.6 x SQLite x1; RSS <= 200 MB during and after the flood.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from bench import wrk
from bench.callback_data import PUBLIC_URL, jwt_mode, seeded_database, users_read_request
from bench.callback_report import SQLITE_X1, Flooded, Run, flood_lines, table, verdicts
from bench.flood import flood
from bench.loadgen import RunStats, run_load, summarize
from bench.proc_stats import idle_percent, machine_ticks, sample, usage
from bench.processes import free_port, peak_rss_mb, reset_peak_rss, wait_ready
from tests.support.databases import unreachable_reason

ROOT = Path(__file__).resolve().parent.parent
FLOODED_X1 = f"{SQLITE_X1} (flood)"
WARM_UP = 400  # requests before measuring: every process verifies the password once

Load = Callable[[int, Sequence[bytes], int], RunStats]


def load_generator(choice: str, wrk_threads: int) -> Load:
    if choice == "wrk" or (choice == "auto" and wrk.available()):
        if not wrk.available():
            raise SystemExit("--loadgen wrk: wrk is not on PATH (Debian: apt-get install wrk)")
        print(f"load generator: wrk, {wrk_threads} threads, each pre-signed request sent once")
        return lambda port, payloads, connections: wrk.run(port, payloads, connections, wrk_threads)
    if choice == "auto":
        print("note: wrk is not on PATH (Debian: apt-get install wrk); using the Python load generator")
    else:
        print("load generator: Python (bench/loadgen.py)")
    return lambda port, payloads, connections: summarize(
        run_load("127.0.0.1", port, payloads, connections), len(payloads)
    )


@contextlib.contextmanager
def profiled(pid: int, label: str, directory: str | None) -> Iterator[None]:
    """py-spy (pip install py-spy) samples the serving process during a measured run, when asked; its
    own CPU is on another process, but it stops the target briefly per sample: read the numbers of a
    profiled run as a profile, not as a measurement."""
    if directory is None:
        yield
        return
    out = Path(directory) / f"{label.replace(' ', '-')}.txt"
    spy = subprocess.Popen(
        ["py-spy", "record", "-p", str(pid), "-r", "200", "--format", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
        print(f"  {label}: py-spy profile in {out}")


def measured(
    label: str,
    pid: int,
    port: int,
    payloads: Sequence[bytes],
    args: argparse.Namespace,
    load: Load,
    peak: float,
) -> Run:
    """One measured run: RSS peak window, CPU and context switches as deltas around the load only.

    ``peak`` is the tree's peak RSS so far (VmHWM before this run's reset), for the lifetime column.
    """
    reset_peak_rss(pid)
    with profiled(pid, label, args.profile):
        before, machine_before = sample(pid), machine_ticks()
        stats = load(port, payloads, args.connections)
        after, machine_after = sample(pid), machine_ticks()
    rss = peak_rss_mb(pid)
    idle = idle_percent(machine_before, machine_after)
    return Run(label, stats, usage(before, after), rss, max(peak, rss), idle)


def measure(
    label: str,
    command: list[str],
    port: int,
    make_payloads: Callable[[int], list[bytes]],
    args: argparse.Namespace,
    load: Load,
    log_path: Path,
    with_flood: bool = False,
    ready: Callable[[], None] | None = None,
) -> tuple[Run, Flooded | None]:
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log)
    try:
        wait_ready(port)
        if ready is not None:
            ready()
        load(port, make_payloads(WARM_UP), args.connections)
        pid = process.pid
        run = measured(label, pid, port, make_payloads(args.requests), args, load, peak_rss_mb(pid))
        print(f"  {label}: {run.stats.rps:.0f} req/s, p99 {run.stats.p99:.1f} ms", flush=True)
        flooded = None
        if with_flood:
            result = flood(port, pid)
            peak = max(run.lifetime_rss, result.peak_rss_mb)
            payloads = make_payloads(args.requests)
            after = measured(f"{label} after flood", pid, port, payloads, args, load, peak)
            flooded = Flooded(label, result, after)
            print(f"  {label}: flood peak RSS {result.peak_rss_mb:.0f} MB, then {after.stats.rps:.0f} req/s")
        return run, flooded
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def endpoint_run(
    label: str,
    backend: str,
    workers: int,
    args: argparse.Namespace,
    load: Load,
    tmp: Path,
    with_flood: bool = False,
) -> tuple[Run, Flooded | None]:
    port = free_port()
    with contextlib.ExitStack() as stack:
        db_url = stack.enter_context(seeded_database(backend, tmp / label.replace(" ", "-")))
        command = [sys.executable, "-m", "endpoint", "serve", "--db", db_url, "--public-url", PUBLIC_URL]
        command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        command += [f"--set={item}" for item in args.set]
        bearer, ready = None, None
        if args.auth == "jwt":  # the gateway's Bearer JWT instead of OAuth 1.0 (JWKS served locally)
            flags, bearer, ready = stack.enter_context(
                jwt_mode(tmp / f"{label.replace(' ', '-')}-jwks", workers)
            )
            command += flags
        return measure(
            label,
            command,
            port,
            lambda n: [users_read_request(f"127.0.0.1:{port}", bearer) for _ in range(n)],
            args,
            load,
            tmp / f"{label.replace(' ', '-')}.log",
            with_flood=with_flood,
            ready=ready,
        )


def bare_run(label: str, flags: list[str], args: argparse.Namespace, load: Load, tmp: Path) -> Run:
    port = free_port()
    command = [sys.executable, "-m", "bench.bare_tornado", str(port), *flags]
    request = users_read_request(f"127.0.0.1:{port}")
    log_path = tmp / f"{label.replace(' ', '-')}.log"
    run, _ = measure(label, command, port, lambda n: [request] * n, args, load, log_path)
    return run


def configurations(args: argparse.Namespace) -> list[tuple[str, str, int]]:
    if not args.matrix:
        return [(f"endpoint {args.backend} x{args.workers}", args.backend, args.workers)]
    runs = [(SQLITE_X1, "sqlite", 1), ("endpoint sqlite x2", "sqlite", 2)]
    reason = unreachable_reason("postgresql")
    if reason:
        print(f"PostgreSQL runs skipped: {reason}")
    else:
        runs += [("endpoint postgresql x1", "postgresql", 1), ("endpoint postgresql x2", "postgresql", 2)]
    return runs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "mysql"), default="sqlite")
    parser.add_argument("--workers", type=int, default=1, help="endpoint processes")
    parser.add_argument(
        "--auth",
        choices=("oauth", "jwt"),
        default="oauth",
        help="callback transport: OAuth 1.0 (fresh nonce per request) or the gateway's RS256 Bearer JWT",
    )
    parser.add_argument("--matrix", action="store_true", help="SQLite and PostgreSQL, 1 and 2 processes")
    parser.add_argument(
        "--flood",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"last, '{FLOODED_X1}': measured, the connection flood, then the load again (default: on)",
    )
    parser.add_argument(
        "--loadgen", choices=("auto", "wrk", "python"), default="auto", help="auto: wrk if on PATH"
    )
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--profile", metavar="DIR", help="py-spy raw profiles of the endpoint runs here")
    parser.add_argument(
        "--baselines", choices=("both", "tiny"), default="both", help="tiny: skip the 50-user one"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="extra endpoint setting (repeatable), e.g. server.db_threads=2",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    print(
        f"{args.requests} pre-signed requests per run ({args.auth}), {args.connections} connections, "
        f"{os.cpu_count()} CPU cores"
    )
    load = load_generator(args.loadgen, args.wrk_threads)
    with tempfile.TemporaryDirectory(prefix="callback-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        tiny = bare_run("bare Tornado tiny JSON", [], args, load, tmp)
        users50 = None
        if args.baselines == "both":
            users50 = bare_run("bare Tornado 50-user JSON", ["--users50"], args, load, tmp)
        tiny_x2 = None
        if any(workers > 1 for _, _, workers in configurations(args)):  # what two processes can gain here
            tiny_x2 = bare_run("bare Tornado tiny JSON x2", ["--processes", "2"], args, load, tmp)
        runs: list[Run] = []
        rows: list[Run] = []  # each after-flood run right below the run it followed
        flooded: list[Flooded] = []
        for label, backend, workers in configurations(args):
            run, _ = endpoint_run(label, backend, workers, args, load, tmp)
            runs.append(run)
            rows.append(run)
        if args.flood and any(label == SQLITE_X1 for label, _, _ in configurations(args)):
            # Last, on a process of its own: a flood leaves the machine slower for a while (1 GiB through
            # loopback), which would otherwise weigh on every configuration measured after it.
            run, after = endpoint_run(FLOODED_X1, "sqlite", 1, args, load, tmp, with_flood=True)
            rows.append(run)
            if after:
                flooded.append(after)
                rows.append(after.after)
    print()
    print("\n".join(table(tiny, users50, [*([tiny_x2] if tiny_x2 else []), *rows])))
    for f in flooded:
        print("\n".join(flood_lines(f)))
    lines, _ = verdicts(tiny, runs, flooded, tiny_x2)
    print("\n".join(lines))
    return 0 if all(run.stats.clean for run in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
