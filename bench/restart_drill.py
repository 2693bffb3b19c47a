"""Database restart under load: PostgreSQL stops and starts again while signed traffic keeps coming.

The drill runs a PostgreSQL cluster of its own (``initdb`` into a temporary directory, a free port, trust
authentication; as root its processes run as the ``postgres`` user): restarting the shared server on
5432 would break everyone else's work. The endpoint (``--workers`` processes) gets ``--connections``
connections of mixed signed traffic (users_read, enablement.read, user_write, the APS instance read).
After ``--before`` seconds the cluster is stopped ``--restarts`` times, alternating ``pg_ctl stop -m
fast`` (a clean shutdown) and ``-m immediate`` (a crash), kept down ``--outage`` seconds, started again,
and followed by ``--after`` seconds of load.

Verdicts: 503 answers during each outage and no other 5xx; no 503 for requests sent once the cluster
accepts connections again; no transport error and no request without an answer; no stuck connections
(none of the endpoint's server sessions active or idle in a transaction for more than 5 s once the load
stops, no more sessions than the pools allow, descriptors back to where they were, a final probe of
sequential requests all 200); no log flood (at most 1.5 log lines per answered request during an outage,
no traceback); and the user_write audit (write_audit.py): answered ones present once, 503 ones entirely or
not at all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pwd
import random
import shutil
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench import signed_traffic as st
from bench.callback_data import seed
from bench.processes import free_port
from bench.write_audit import USER_WRITE, Write, audit, read_state
from models.db import DatabaseSettings

ANSWER_TIMEOUT = 30.0
STUCK_AFTER = 5.0  # seconds a session may stay active or idle in a transaction once the load stopped
MAX_LINES_PER_ANSWER = 1.5
MIX = (("users_read", 0.5), ("enablement.read", 0.15), ("user_write", 0.25), ("GET /app/{id}", 0.10))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--restarts", type=int, default=2, help="stops and starts (fast, immediate, ...)")
    parser.add_argument("--outage", type=float, default=10.0, help="seconds the database stays down")
    parser.add_argument("--before", type=float, default=10.0, help="seconds of load before the first stop")
    parser.add_argument("--after", type=float, default=15.0, help="seconds of load after each start")


def postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl live (pg_config, else the newest /usr/lib/postgresql/*/bin)."""
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(out.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return next((c for c in candidates if (c / "initdb").exists() and (c / "pg_ctl").exists()), None)


class Cluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1:``port``."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.home = Path(tempfile.mkdtemp(prefix="drill-pg-"))
        self.data = self.home / "data"
        # initdb refuses to run as root: the cluster belongs to the postgres user then.
        self.user = pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else None
        if self.user is not None:
            os.chown(self.home, self.user, -1)

    def _run(self, *args: str) -> None:
        subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            user=self.user,
            cwd=self.home,
        )

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.home / "server.log"), "-o", options, "-w", "start"
        )

    def stop(self, mode: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def connect(self, name: str = "postgres"):  # type: ignore[no-untyped-def]
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=name)
        conn.autocommit = True
        return conn

    def url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.home, ignore_errors=True)


@dataclass
class Sent:
    route: str
    sent: float
    answered: float | None = None
    status: int | None = None  # None: no answer (a transport error or the timeout)


@dataclass
class Outage:
    mode: str
    down: float  # when the stop began
    up: float  # when the cluster accepted connections again
    log_lines: int = 0
    log_bytes: int = 0
    loggers: Counter[str] = field(default_factory=Counter)


class MixedLoad:
    def __init__(self, port: int, controller_uri: str, started: float) -> None:
        self.port, self.controller_uri, self.started = port, controller_uri, started
        self.sent: list[Sent] = []
        self.writes: list[Write] = []
        self.stop = asyncio.Event()

    def now(self) -> float:
        return time.monotonic() - self.started

    def build(self, route: str, host: str) -> bytes:
        if route == "users_read":
            return st.callback(host, "vendor.app.users_read.v1.0")
        if route == "enablement.read":
            return st.callback(host, "a.p.enablement.read.v1.0")
        if route == "user_write":
            self.writes.append(Write(USER_WRITE, str(uuid.uuid4())))
            return self.writes[-1].request(host, self.controller_uri)
        return st.aps(host, "GET", f"/app/{st.INSTANCE}", None, self.controller_uri)

    async def worker(self, seed: int) -> None:
        rng = random.Random(seed)
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        host = f"127.0.0.1:{self.port}"
        while not self.stop.is_set():
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            assert reader is not None
            route = rng.choices([r for r, _ in MIX], [w for _, w in MIX])[0]
            record = Sent(route, self.now())
            self.sent.append(record)
            writer.write(self.build(route, host))
            write = self.writes[-1] if route == "user_write" else None
            try:
                answer = await asyncio.wait_for(st.read_answer(reader), ANSWER_TIMEOUT)
            except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
                writer.close()
                reader = writer = None
                continue
            record.answered, record.status = self.now(), answer.status
            if write is not None:
                write.status = answer.status
            if answer.close:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()


def sessions(cluster: Cluster, name: str) -> tuple[Counter[str], int]:
    """The endpoint's sessions on ``name`` by state, and how many are stuck (busy for > STUCK_AFTER s)."""
    conn = cluster.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT state, extract(epoch FROM now() - state_change) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            rows = cur.fetchall()
    finally:
        conn.close()
    states = Counter(str(state) for state, _ in rows)
    stuck = sum(1 for state, age in rows if state != "idle" and float(age or 0) > STUCK_AFTER)
    return states, stuck


def run(endpoint_args: argparse.Namespace) -> int:
    args = endpoint_args
    bindir = postgres_bindir()
    if bindir is None:
        print("SKIP  database restart drill: no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
        return 0
    cluster = Cluster(bindir)
    try:
        cluster.init()
        conn = cluster.connect()
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE drill")
        conn.close()
        with tempfile.TemporaryDirectory(prefix="drill-") as tmp, st.controller(Path(tmp)) as (sim, ca):
            url = cluster.url("drill")
            seed(DatabaseSettings(url=url))
            st.prepare(url, sim.url)
            endpoint = st.Endpoint(
                url, free_port(), args.workers, Path(tmp) / "endpoint.log", [f"proxy.ca_bundle={ca}"]
            )
            endpoint.start()
            try:
                return drill(cluster, endpoint, sim.url, url, args)
            finally:
                endpoint.stop()
                st.keep_log(endpoint.log_path, args.log_dir, "restart-endpoint.log")
                st.keep_log(cluster.home / "server.log", args.log_dir, "restart-postgresql.log")
    finally:
        cluster.close()


def drill(
    cluster: Cluster, endpoint: st.Endpoint, controller_uri: str, url: str, args: argparse.Namespace
) -> int:
    print(
        f"restart drill: postgresql x{args.workers} (own cluster on port {cluster.port}), "
        f"{args.connections} connections, {args.restarts} restarts of {args.outage:.0f} s, "
        f"load average {st.loadavg()}"
    )
    meter = st.LogMeter(endpoint.log_path)
    load = MixedLoad(endpoint.port, controller_uri, time.monotonic())
    outages: list[Outage] = []
    fds: dict[str, int] = {}
    baseline: dict[str, float] = {}

    async def scenario() -> None:
        rng = random.Random(args.seed)
        workers = [
            asyncio.ensure_future(load.worker(rng.randrange(1 << 30))) for _ in range(args.connections)
        ]
        await asyncio.sleep(args.before / 2)  # the first half warms up; the second is the baseline
        log_bytes, log_lines = meter.read()
        mark, answered = load.now(), len(load.sent)
        await asyncio.sleep(args.before / 2)
        fds["before"] = st.tree_sample(endpoint.pid).fds
        meter.read()
        baseline["lines"] = (meter.lines - log_lines) / max(1, len(load.sent) - answered)
        baseline["bytes"] = (meter.bytes - log_bytes) / (load.now() - mark)
        for n in range(args.restarts):
            mode = ("fast", "immediate")[n % 2]
            meter.read()
            before = (meter.bytes, meter.lines, Counter(meter.by_logger))
            down = load.now()
            await asyncio.to_thread(cluster.stop, mode)
            await asyncio.sleep(args.outage)
            await asyncio.to_thread(cluster.start)
            outage = Outage(mode, down, load.now())
            meter.read()
            outage.log_bytes, outage.log_lines = meter.bytes - before[0], meter.lines - before[1]
            outage.loggers = meter.by_logger - before[2]
            outages.append(outage)
            print(f"restart {n + 1} ({mode}): down at {down:.1f} s, accepting again at {outage.up:.1f} s")
            await asyncio.sleep(args.after)
        fds["after"] = st.tree_sample(endpoint.pid).fds
        load.stop.set()
        await asyncio.gather(*workers)

    asyncio.run(scenario())
    time.sleep(2)
    states, stuck = sessions(cluster, "drill")
    probe = asyncio.run(probe_statuses(endpoint.port, 20))
    meter.read()
    answered = [s for s in load.sent if s.status is not None]
    print(
        f"\n{len(load.sent)} requests, {len(answered)} answered; statuses "
        f"{dict(sorted(Counter(s.status for s in answered).items()))}\n"
        f"baseline: {baseline['lines']:.2f} log lines per request, {baseline['bytes'] / 1024:.0f} KiB/s"
    )
    verdicts: list[tuple[bool, str]] = []
    for n, outage in enumerate(outages, 1):
        next_down = outages[n].down if n < len(outages) else float("inf")
        verdicts += outage_verdicts(n, outage, answered, next_down)
    unanswered = len(load.sent) - len(answered)
    limit = args.workers * DatabaseSettings().max_connections
    five_xx = Counter(s.status for s in answered if s.status and s.status >= 500 and s.status != 503)
    verdicts += [
        (
            not five_xx and not unanswered,
            f"5xx other than 503: {dict(five_xx) or 0}; requests without an answer (transport error or "
            f"{ANSWER_TIMEOUT:.0f} s timeout): {unanswered}",
        ),
        (
            stuck == 0 and sum(states.values()) <= limit,
            f"server sessions after the load: {dict(states)} (at most {limit}); busy for more than "
            f"{STUCK_AFTER:.0f} s: {stuck}",
        ),
        (
            fds["after"] <= fds["before"] + 10,
            f"descriptors of the endpoint under load: before {fds['before']}, after {fds['after']}",
        ),
        (probe == Counter({200: sum(probe.values())}), f"final probe, sequential users_read: {dict(probe)}"),
        (
            meter.tracebacks == 0,
            f"endpoint log: {meter.lines} lines, {meter.bytes / 1024:.0f} KiB, {meter.tracebacks} tracebacks",
        ),
    ]
    verdicts += [(ok, "user_write: " + text) for ok, text in audit(load.writes, read_state(url))[:5]]
    return st.print_verdicts(verdicts)


def outage_verdicts(n: int, outage: Outage, answered: list[Sent], next_down: float) -> list[tuple[bool, str]]:
    """503s during the outage and no other 5xx; none once the database is back; no log flood."""
    during = [s for s in answered if outage.down <= s.sent < outage.up]
    statuses = Counter(s.status for s in during)
    others = {s: c for s, c in statuses.items() if s is not None and s >= 500 and s != 503}
    # Sent once the database accepted connections again, and answered before the next stop began.
    back = [s for s in answered if outage.up <= s.sent and s.answered is not None and s.answered < next_down]
    late = [s for s in back if s.status == 503]
    first_ok = min((s.answered or 0 for s in back if s.status == 200), default=float("nan")) - outage.up
    per_answer = outage.log_lines / max(1, len(during))
    loggers = ", ".join(f"{name} {count}" for name, count in outage.loggers.most_common(4))
    return [
        (
            statuses[503] > 0 and not others,
            f"outage {n} ({outage.mode}, {outage.up - outage.down:.1f} s), answers to the requests sent "
            f"meanwhile: {dict(sorted(statuses.items()))}",
        ),
        (
            not late,
            f"outage {n}: 503s for requests sent after the database was back: {len(late)} "
            f"{dict(Counter(s.route for s in late)) or ''}(first 200 after {first_ok:.2f} s)",
        ),
        (
            per_answer <= MAX_LINES_PER_ANSWER,
            f"outage {n}: log {outage.log_lines} lines, {outage.log_bytes / 1024:.0f} KiB, "
            f"{outage.log_bytes / 1024 / max(0.1, outage.up - outage.down):.0f} KiB/s, {per_answer:.2f} "
            f"lines per answered request (limit {MAX_LINES_PER_ANSWER}); by level and logger: {loggers}",
        ),
    ]


async def probe_statuses(port: int, count: int) -> Counter[int]:
    """``count`` users_read one after the other on one connection: what a caller meets after the drill."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    statuses: Counter[int] = Counter()
    try:
        for _ in range(count):
            writer.write(st.callback(f"127.0.0.1:{port}", "vendor.app.users_read.v1.0"))
            statuses[(await asyncio.wait_for(st.read_answer(reader), ANSWER_TIMEOUT)).status] += 1
    finally:
        writer.close()
    return statuses
