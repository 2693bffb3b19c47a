"""Soak: a long run of mixed signed traffic against a real endpoint, watching for drift.

    .venv/bin/python -m bench.soak                              # SQLite, 1 process, 600 s
    .venv/bin/python -m bench.soak --backend postgresql --workers 2
    .venv/bin/python -m bench.soak --duration 60                # a short run while developing

32 connections (``--connections``) keep sending, each request freshly signed and checked against the
status its route must get: users_read and enablement.read (200), user_write of a new login (200), the APS
instance read and configure (200), the whole APS tenant lifecycle (provision, read, configure, a user
created, disable, enable, the user and the tenant deleted; the connector calls the controller simulator
back), 5 % of requests with a broken signature (401), 1 % with a wrong password for a dedicated identity
(401, or 429 once its own throttle trips: never anyone else's). Every ``--interval`` seconds the server
tree's RSS, open descriptors (/proc/<pid>/fd of every process) and log bytes and lines are sampled.

Verdicts: no unexpected status, no 5xx, no transport error, RSS drift below 10 % between minute 2 and the
end, descriptors flat (within 20), and the log volume per minute (reported). Exit status 1 when a verdict
fails; a PostgreSQL run where the server is unreachable is skipped (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import signed_traffic as st
from bench.callback_data import seeded_database
from bench.processes import free_port
from tests.support.databases import unreachable_reason

Build = Callable[[str], bytes]  # host -> raw request


@dataclass(frozen=True)
class Kind:
    share: float  # of all requests
    expected: frozenset[int]


# One slot of a connection is one request, except the lifecycle, whose slot sends LIFECYCLE_STEPS.
KINDS = {
    "POST /callback users_read": Kind(0.50, frozenset({200})),
    "POST /callback enablement.read": Kind(0.12, frozenset({200})),
    "POST /callback user_write": Kind(0.15, frozenset({200})),
    "GET /app/{id}": Kind(0.06, frozenset({200})),
    "PUT /app/{id}": Kind(0.03, frozenset({200})),
    "APS tenant lifecycle": Kind(0.08, frozenset()),
    "POST /callback bad signature": Kind(0.05, frozenset({401})),
    "POST /callback wrong password": Kind(0.01, frozenset({401, 429})),
}
LIFECYCLE_STEPS = 8
REPEAT_PAUSE = 2.0  # seconds between the repeats of an operation answered 202
REPEATS = 30  # repeats before a 202 operation counts as never done


def lifecycle(controller_uri: str) -> list[tuple[str, Build, frozenset[int]]]:
    """A tenant's life as the controller drives it: (route, request builder, expected statuses) per step."""
    tenant, user = str(uuid.uuid4()), str(uuid.uuid4())

    def call(method: str, path: str, body: dict | None = None) -> Build:
        return lambda host: st.aps(host, method, path, body, controller_uri)

    steps = [
        ("POST /tenants", call("POST", "/tenants", st.tenant_body(tenant)), {201}),
        ("GET /tenants/{id}", call("GET", f"/tenants/{tenant}"), {200}),
        ("PUT /tenants/{id}", call("PUT", f"/tenants/{tenant}", {"USERS": {"limit": 5}}), {200}),
        ("POST /users", call("POST", "/users", st.user_body(user, tenant)), {201}),
        ("POST /tenants/{id}/disable", call("POST", f"/tenants/{tenant}/disable"), {200}),
        ("POST /tenants/{id}/enable", call("POST", f"/tenants/{tenant}/enable"), {200}),
        ("DELETE /users/{id}", call("DELETE", f"/users/{user}"), {204}),
        # 202 while a usage push of the tenant is on its way to the controller (docs/aps.md): sent again
        # as the controller would, until it is done (drive()).
        ("DELETE /tenants/{id}", call("DELETE", f"/tenants/{tenant}"), {204, 202}),
    ]
    assert len(steps) == LIFECYCLE_STEPS
    return [(route, build, frozenset(expected)) for route, build, expected in steps]


def single(kind: str, controller_uri: str, rng: random.Random) -> Build:
    if kind == "POST /callback users_read":
        return lambda host: st.callback(host, "vendor.app.users_read.v1.0")
    if kind == "POST /callback enablement.read":
        return lambda host: st.callback(host, "a.p.enablement.read.v1.0")
    if kind == "POST /callback user_write":
        return lambda host: st.user_write(host, str(uuid.uuid4()))
    if kind == "GET /app/{id}":
        return lambda host: st.aps(host, "GET", f"/app/{st.INSTANCE}", None, controller_uri)
    if kind == "PUT /app/{id}":
        body = {"hubID": f"h{rng.randrange(1000)}"}
        return lambda host: st.aps(host, "PUT", f"/app/{st.INSTANCE}", body, controller_uri)
    if kind == "POST /callback bad signature":
        return lambda host: st.callback(host, "a.p.enablement.read.v1.0").replace(
            b'oauth_signature="', b'oauth_signature="AAAA', 1
        )
    return lambda host: st.callback(
        host, "a.p.enablement.read.v1.0", login=st.VICTIM, password="not-the-password"
    )


@dataclass
class Tally:
    by_route: Counter[tuple[str, int]] = field(default_factory=Counter)
    unexpected: Counter[tuple[str, int]] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    latency_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    sent: int = 0


class Connection:
    """One keep-alive connection: reconnects after the server closes it or it breaks."""

    def __init__(self, host: str, port: int, tally: Tally) -> None:
        self.host, self.port, self.tally = host, port, tally
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_status = 0

    async def exchange(self, route: str, build: Build, expected: frozenset[int]) -> bool:
        """Send one request and check its status; False when it failed (unexpected or no answer)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        started = time.perf_counter()
        self.writer.write(build(f"{self.host}:{self.port}"))
        try:
            answer = await st.read_answer(self.reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            self.tally.transport_errors[route] += 1
            self.close()
            return False
        self.tally.latency_ms[route].append(1000 * (time.perf_counter() - started))
        if answer.close:
            self.close()
        self.tally.sent += 1
        self.last_status = answer.status
        self.tally.by_route[(route, answer.status)] += 1
        if answer.status not in expected:
            self.tally.unexpected[(route, answer.status)] += 1
            return False
        return True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def drive(port: int, seconds: float, connections: int, controller_uri: str, tally: Tally) -> None:
    kinds = list(KINDS)
    weights = [
        k.share / (LIFECYCLE_STEPS if name == "APS tenant lifecycle" else 1) for name, k in KINDS.items()
    ]
    deadline = time.monotonic() + seconds

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        connection = Connection("127.0.0.1", port, tally)
        try:
            while time.monotonic() < deadline:
                kind = rng.choices(kinds, weights)[0]
                if kind != "APS tenant lifecycle":
                    await connection.exchange(kind, single(kind, controller_uri, rng), KINDS[kind].expected)
                    continue
                for route, build, expected in lifecycle(controller_uri):
                    if not await connection.exchange(route, build, expected):
                        break  # the next steps would only fail because this one did
                    if connection.last_status == 202:
                        await until_done(connection, route, build)
        finally:
            connection.close()

    await asyncio.gather(*(worker(n) for n in range(connections)))


async def until_done(connection: Connection, route: str, build: Build) -> None:
    """An APS operation answered 202: the same request again (signed afresh) every REPEAT_PAUSE s, as the
    controller repeats it, until its final answer; still 202 after REPEATS counts as unexpected."""
    for _ in range(REPEATS):
        await asyncio.sleep(REPEAT_PAUSE)
        if not await connection.exchange(route + " repeated", build, frozenset({202, 204})):
            return
        if connection.last_status != 202:
            return
    connection.tally.unexpected[(route + " never done", 202)] += 1


@dataclass(frozen=True)
class Sample:
    seconds: float
    sent: int
    tree: st.TreeSample
    log_bytes: int
    log_lines: int


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "mysql"), default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples (default 10)")
    parser.add_argument(
        "--warmup", type=float, default=120.0, help="drift is measured from here (default 120)"
    )
    parser.add_argument("--set", action="append", default=[], help="endpoint setting SECTION.KEY=VALUE")
    parser.add_argument("--env", action="append", default=[], help="endpoint environment variable NAME=VALUE")
    args = parser.parse_args()
    why = unreachable_reason(args.backend)
    if why:
        print(f"SKIP  {args.backend} soak: {why}")
        return 0
    st.become_subreaper()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, st.controller(Path(tmp)) as (sim, ca):
        with seeded_database(args.backend, Path(tmp)) as url:
            st.prepare(url, sim.url)
            log_path = Path(tmp) / "endpoint.log"
            settings = [f"proxy.ca_bundle={ca}", *args.set]
            environ = dict(item.split("=", 1) for item in args.env)
            endpoint = st.Endpoint(url, free_port(), args.workers, log_path, settings, environ)
            endpoint.start()
            try:
                return soak(endpoint, sim, args)
            finally:
                endpoint.stop()


def soak(endpoint: st.Endpoint, sim: st.ControllerServer, args: argparse.Namespace) -> int:
    tally, samples, meter = Tally(), [], st.LogMeter(endpoint.log_path)
    print(
        f"soak: {args.backend} x{args.workers}, {args.connections} connections, {args.duration:.0f} s, "
        f"load average {st.loadavg()}"
    )
    started = time.monotonic()
    samples.append(Sample(0.0, 0, st.tree_sample(endpoint.pid), *meter.read()))

    async def run() -> None:
        load = asyncio.ensure_future(drive(endpoint.port, args.duration, args.connections, sim.url, tally))
        while not load.done():
            await asyncio.wait([load], timeout=args.interval)
            if load.done() or time.monotonic() - started > args.duration - 1:
                break  # the connections are closing: not a sample of the soak
            with sim.state.lock:
                sim.state.received.clear()  # the simulator keeps every call it got; not ours to measure
            tree = st.tree_sample(endpoint.pid)
            log_bytes, log_lines = meter.read()
            samples.append(Sample(time.monotonic() - started, tally.sent, tree, log_bytes, log_lines))
            s = samples[-1]
            print(
                f"{s.seconds:5.0f}s {s.sent:8d} requests {s.sent / s.seconds:5.0f}/s  RSS {tree.rss_mb:6.1f} "
                f"MB (anon {tree.anon_mb:6.1f})  fds {tree.fds:3d}  log {log_bytes / 1024:8.0f} KiB "
                f"{log_lines:7d} lines",
                flush=True,
            )
        await load

    asyncio.run(run())
    meter.read()
    return report(tally, samples, args, meter)


def per_minute(samples: list[Sample]) -> list[tuple[int, Sample, Sample]]:
    """(minute, its first sample, its last sample), the first sample of a minute being the previous end."""
    rows, previous = [], samples[0]
    for minute in range(1, int(samples[-1].seconds // 60) + 2):
        inside = [s for s in samples if previous.seconds < s.seconds <= minute * 60 + 1]
        if inside:
            rows.append((minute, previous, inside[-1]))
            previous = inside[-1]
    return rows


def report(tally: Tally, samples: list[Sample], args: argparse.Namespace, meter: st.LogMeter) -> int:
    if len(samples) < 2:
        print("FAIL  too short: fewer than two samples (raise --duration or lower --interval)")
        return 1
    elapsed = samples[-1].seconds
    print(
        f"\n{args.backend} x{args.workers}, {args.connections} connections, {elapsed:.0f} s, load average "
        f"{st.loadavg()}: {tally.sent} requests ({tally.sent / elapsed:.0f}/s)"
    )
    print(f"  {'route':<32} {'status':>6} {'count':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for (route, status), count in sorted(tally.by_route.items()):
        times = sorted(tally.latency_ms[route])
        p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
        print(f"  {route:<32} {status:>6} {count:>8} {statistics.median(times):7.1f} {p99:7.1f}")
    print(
        f"\n  {'minute':>6} {'req/s':>6} {'RSS MB':>7} {'anon MB':>8} {'fds':>4} {'log KiB':>8} {'lines':>7}"
    )
    for minute, first, last in per_minute(samples):
        span = last.seconds - first.seconds or 1
        print(
            f"  {minute:>6} {(last.sent - first.sent) / span:6.0f} {last.tree.rss_mb:7.1f} "
            f"{last.tree.anon_mb:8.1f} {last.tree.fds:4d} {(last.log_bytes - first.log_bytes) / 1024:8.0f} "
            f"{last.log_lines - first.log_lines:7d}"
        )
    after = [s for s in samples if s.seconds >= min(args.warmup, elapsed / 5)] or samples[-1:]
    base, end = after[0].tree, after[-1].tree
    drift = (end.rss_mb / base.rss_mb - 1) * 100
    anon_drift = (end.anon_mb / base.anon_mb - 1) * 100
    fds = [s.tree.fds for s in after]
    third = [s.tree.rss_mb for s in samples if s.seconds >= elapsed * 2 / 3]
    slope = (third[-1] - third[0]) / (elapsed / 3 / 60)
    five_xx = Counter({key: n for key, n in tally.by_route.items() if key[1] >= 500})
    minutes = elapsed / 60
    verdicts = [
        (not tally.unexpected, f"unexpected statuses (route, status): {dict(tally.unexpected) or 0}"),
        (not five_xx, f"5xx answers: {dict(five_xx) or 0}"),
        (not tally.transport_errors, f"transport errors: {dict(tally.transport_errors) or 0}"),
        (
            drift < 10,
            f"RSS {base.rss_mb:.1f} -> {end.rss_mb:.1f} MB from {after[0].seconds:.0f} s to the end "
            f"({drift:+.1f} %, limit +10 %; anon {base.anon_mb:.1f} -> {end.anon_mb:.1f} MB, "
            f"{anon_drift:+.1f} %)",
        ),
        (
            True,
            f"RSS over the last third: {third[0]:.1f} -> {third[-1]:.1f} MB ({slope:+.2f} MB/min); peak "
            f"since start (VmHWM summed over the tree) {end.peak_mb:.1f} MB",
        ),
        (max(fds) - min(fds) <= 20, f"descriptors {min(fds)}..{max(fds)} after warm-up (flat within 20)"),
        (
            True,
            f"log: {meter.bytes / 1024 / minutes:.0f} KiB and {meter.lines / minutes:.0f} lines per minute "
            f"({meter.lines} lines, {meter.bytes / 1048576:.1f} MiB, {meter.tracebacks} tracebacks; by level "
            f"and logger: {', '.join(f'{name} {n}' for name, n in meter.by_logger.most_common(5))})",
        ),
    ]
    return st.print_verdicts(verdicts)


if __name__ == "__main__":
    sys.exit(main())
