"""Drive wrk with pre-built raw requests, each sent exactly once (bench/wrk_replay.lua), into a RunStats."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.loadgen import RunStats

SCRIPT = Path(__file__).resolve().parent / "wrk_replay.lua"
STALL_SECONDS = 15.0  # no new response for this long: stop wrk and report what arrived
TIMEOUT_SECONDS = 10  # wrk --timeout: its histogram limit; slower responses count as timeouts


def available() -> bool:
    return shutil.which("wrk") is not None


def write_requests(directory: Path, payloads: Sequence[bytes], threads: int) -> list[int]:
    """Contiguous slices, one file per wrk thread: records of b"<length>\\n<raw request>"."""
    sizes = []
    per_thread, extra = divmod(len(payloads), threads)
    start = 0
    for index in range(threads):
        end = start + per_thread + (1 if index < extra else 0)
        with (directory / f"requests-{index}.bin").open("wb") as f:
            for raw in payloads[start:end]:
                f.write(b"%d\n" % len(raw))
                f.write(raw)
        sizes.append(end - start)
        start = end
    return sizes


def _progress(directory: Path, threads: int) -> tuple[int, int]:
    received = total = 0
    for index in range(threads):
        try:
            got, want = (directory / f"progress-{index}").read_text().split()
        except (FileNotFoundError, ValueError):
            continue
        received, total = received + int(got), total + int(want)
    return received, total


def _wait(process: subprocess.Popen[bytes], directory: Path, threads: int, expected: int) -> None:
    """Until every thread has all its responses (then SIGINT ends wrk's -d sleep), a stall, or wrk's exit."""
    last_count, last_change = -1, time.monotonic()
    while process.poll() is None:
        received, _ = _progress(directory, threads)
        if received >= expected:
            break
        if received != last_count:
            last_count, last_change = received, time.monotonic()
        elif time.monotonic() - last_change > STALL_SECONDS:
            print(
                f"  wrk: no progress for {STALL_SECONDS:.0f} s at {received}/{expected} responses, stopping"
            )
            break
        time.sleep(0.02)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)


def raw_percentiles(
    histogram: list[list[int]], duration_us: int, completed: int, connections: int, quantiles: Sequence[float]
) -> tuple[list[float], int]:
    """Undo wrk 4's coordinated-omission correction, then take percentiles (ms) as bench/loadgen.py does.

    After the run wrk adds, for every recorded latency n >= 2e, synthetic samples at n-e, n-2e, ... (> e),
    e = duration / (completed / connections): an open-loop assumption that does not fit this closed-loop
    replay. Corrected count at n > e is orig[n] + sum_k orig[n+k*e], so walking down recovers orig.
    Returns the percentiles and the number of recovered samples (== completed when the inversion holds).
    """
    corrected = {value: count for value, count in histogram}
    original = dict(corrected)
    per_connection = completed // connections
    if per_connection > 0:
        e = duration_us // per_connection
        carried: dict[int, int] = {}  # n -> sum of orig[n + k*e], k >= 1
        for n in sorted(corrected, reverse=True):
            if n > e:
                original[n] = corrected[n] - carried.get(n, 0)
                if n - e > e:
                    carried[n - e] = carried.get(n, 0) + original[n]
    ordered = sorted((n, c) for n, c in original.items() if c > 0)
    samples = sum(c for _, c in ordered)
    results = []
    for q in quantiles:
        rank, seen, value = min(samples - 1, int(q / 100 * samples)), 0, float("nan")
        for n, c in ordered:
            seen += c
            if seen > rank:
                value = n / 1000
                break
        results.append(value)
    return results, samples


def run(port: int, payloads: Sequence[bytes], connections: int = 32, threads: int = 2) -> RunStats:
    """Send every payload once over ``connections`` keep-alive connections from ``threads`` wrk threads."""
    threads = max(1, min(threads, connections, len(payloads)))
    with tempfile.TemporaryDirectory(prefix="wrk-replay-") as tmp:
        directory = Path(tmp)
        write_requests(directory, payloads, threads)
        duration = 120 + len(payloads) // 10  # a bound only: wrk is stopped as soon as it is done
        command = [
            "wrk",
            f"--threads={threads}",
            f"--connections={connections}",
            f"--duration={duration}s",
            f"--timeout={TIMEOUT_SECONDS}s",
            f"--script={SCRIPT}",
            f"http://127.0.0.1:{port}/",
        ]
        env = {**os.environ, "BENCH_WRK_DIR": tmp}
        with (directory / "wrk.out").open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
            try:
                _wait(process, directory, threads, len(payloads))
                process.wait(120)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        summary_path = directory / "summary.json"
        if not summary_path.exists():
            raise RuntimeError("wrk wrote no summary:\n" + (directory / "wrk.out").read_text()[-2000:])
        summary = json.loads(summary_path.read_text())
    return _stats(summary, len(payloads), connections)


def _stats(summary: dict, expected: int, connections: int) -> RunStats:  # type: ignore[type-arg]
    per_thread = summary["threads"]
    statuses: dict[int, int] = {}
    for t in per_thread:
        for code, count in t["statuses"].items():
            statuses[int(code)] = statuses.get(int(code), 0) + count
    started = [t["first_at"] for t in per_thread if t["sent"]]
    finished = [t["last_at"] for t in per_thread if t["received"]]
    seconds = max(finished) - min(started) if started and finished else 0.0
    errors = summary["errors"]
    (p50, p99), samples = raw_percentiles(
        summary["histogram"], summary["duration_us"], summary["requests"], connections, (50, 99)
    )
    generator = "wrk"
    if samples + errors["timeout"] != summary["requests"]:  # unexpected wrk version: keep its own numbers
        p50, p99 = summary["wrk_p50_us"] / 1000, summary["wrk_p99_us"] / 1000
        generator = "wrk (corrected latencies)"
    transport = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    return RunStats(expected, sum(statuses.values()), transport, seconds, p50, p99, statuses, generator)
