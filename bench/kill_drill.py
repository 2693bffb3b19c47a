"""kill -9 under write load: endpoint processes die at random moments, and no write is lost or half-done.

The endpoint serves PostgreSQL with ``--workers`` processes (2) while ``--connections`` connections send
nothing but writes (user_write callbacks, APS tenant provisioning, APS user creation; see write_audit.py
for their keys). ``--kills`` times (20), after a random pause of ``--min-gap``..``--max-gap`` seconds, a
serving process gets SIGKILL: one worker (the supervisor starts a new one), or with probability
``--tree-share`` the whole tree at once (a crashed host or container; the script starts it again). Each
write's answer is recorded: 2xx, 4xx, 5xx, or none (the connection died with the process).

Once the load stops and the endpoint has settled (no APS job left pending or running: a killed worker's
job is resumed after ``aps.job_lease``, set to 5 s here), the database is audited (write_audit.py). Then
every unanswered write is sent again, as the controller would, and the audit runs once more: now every
write must be there exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

from bench import signed_traffic as st
from bench.write_audit import APS_USER, TENANT_WRITE, USER_WRITE, Write, audit, read_state

ANSWER_TIMEOUT = 30.0
RESTART_TIMEOUT = 30.0  # seconds the supervisor may take to replace a killed worker
JOB_LEASE = 5.0
MIX = ((USER_WRITE, 0.6), (TENANT_WRITE, 0.2), (APS_USER, 0.2))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kills", type=int, default=20, help="how many SIGKILLs (default 20)")
    parser.add_argument("--min-gap", type=float, default=1.0, help="seconds of load before a kill, at least")
    parser.add_argument("--max-gap", type=float, default=4.0, help="... and at most")
    parser.add_argument("--tree-share", type=float, default=0.25, help="kills that take the whole tree")


def settings(ca: str) -> list[str]:
    return [f"proxy.ca_bundle={ca}", f"aps.job_lease={JOB_LEASE}", "aps.job_poll_interval=0.5"]


class WriteLoad:
    """Connections sending writes until ``stop``; every write is recorded before it is sent."""

    def __init__(self, port: int, controller_uri: str) -> None:
        self.port, self.controller_uri = port, controller_uri
        self.writes: list[Write] = []
        self.tenants: list[str] = []  # provisioned (answered 2xx): where aps_user writes go
        self.stop = asyncio.Event()
        self.refused_connects = 0

    def next_write(self, rng: random.Random) -> Write:
        kind = rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        if kind == APS_USER and self.tenants:
            return Write(APS_USER, str(_uuid(rng)), tenant=rng.choice(self.tenants))
        return Write(kind if kind != APS_USER else TENANT_WRITE, str(_uuid(rng)))

    async def worker(self, seed: int) -> None:
        rng = random.Random(seed)
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        host = f"127.0.0.1:{self.port}"
        while not self.stop.is_set():
            if writer is None:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:  # the whole tree is down: nothing was sent
                    self.refused_connects += 1
                    await asyncio.sleep(0.05)
                    continue
            assert reader is not None
            write = self.next_write(rng)
            self.writes.append(write)
            writer.write(write.request(host, self.controller_uri))
            try:
                answer = await asyncio.wait_for(st.read_answer(reader), ANSWER_TIMEOUT)
            except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
                writer.close()
                reader = writer = None
                continue
            write.status = answer.status
            if write.kind == TENANT_WRITE and 200 <= answer.status < 300:
                self.tenants.append(write.key)
            if answer.close:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


async def killer(endpoint: st.Endpoint, args: argparse.Namespace, rng: random.Random) -> list[str]:
    """SIGKILL ``args.kills`` times; returns one line per kill."""
    lines = []
    for n in range(1, args.kills + 1):
        await asyncio.sleep(rng.uniform(args.min_gap, args.max_gap))
        started = time.monotonic()
        if rng.random() < args.tree_share:
            pids = await asyncio.to_thread(endpoint.kill_tree)
            await asyncio.to_thread(endpoint.start)
            what = f"the whole tree {pids}"
        else:
            victim = rng.choice(endpoint.worker_pids())
            os.kill(victim, signal.SIGKILL)
            deadline = time.monotonic() + RESTART_TIMEOUT
            while True:  # the supervisor reaps it and, after its restart delay, forks a new worker
                workers = endpoint.worker_pids()
                if victim not in workers and len(workers) == endpoint.workers:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the supervisor did not replace worker {victim}")
                await asyncio.sleep(0.05)
            what = f"worker {victim}"
        took = time.monotonic() - started
        lines.append(f"kill {n:2d}: {what}; serving {endpoint.workers} workers again after {took:.1f} s")
        print(lines[-1], flush=True)
    return lines


async def settle(url: str, timeout: float) -> None:
    """Until no APS job is pending or running (a killed worker's job waits for its lease to run out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = await asyncio.to_thread(read_state, url)
        if not state.unfinished_jobs:
            return
        await asyncio.sleep(1)


async def resend(writes: list[Write], port: int, controller_uri: str) -> None:
    """Each unanswered write again (same request_id or aps.id, signed afresh), as the controller retries."""
    queue = list(writes)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                write = queue.pop()
                writer.write(write.request(f"127.0.0.1:{port}", controller_uri))
                answer = await asyncio.wait_for(st.read_answer(reader), ANSWER_TIMEOUT)
                write.retried = answer.status
                if answer.close:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(4)))


def run(url: str, endpoint: st.Endpoint, controller_uri: str, args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    print(
        f"kill drill: postgresql x{args.workers}, {args.connections} connections, {args.kills} kills, "
        f"seed {seed}, load average {st.loadavg()}"
    )
    load = WriteLoad(endpoint.port, controller_uri)
    started = time.monotonic()

    async def drill() -> None:
        workers = [
            asyncio.ensure_future(load.worker(rng.randrange(1 << 30))) for _ in range(args.connections)
        ]
        await killer(endpoint, args, rng)
        await asyncio.sleep(args.min_gap)  # some load on the last restart
        load.stop.set()
        await asyncio.gather(*workers)
        await settle(url, JOB_LEASE + 60)

    asyncio.run(drill())
    elapsed = time.monotonic() - started
    statuses = Counter(w.status for w in load.writes)
    print(
        f"\n{len(load.writes)} writes in {elapsed:.0f} s; answers {_statuses(statuses)}; "
        f"{load.refused_connects} connection attempts refused while the tree was down"
    )
    after_restart = audit(load.writes, read_state(url))
    unanswered = [w for w in load.writes if w.outcome == "unknown"]
    asyncio.run(resend(unanswered, endpoint.port, controller_uri))
    asyncio.run(settle(url, JOB_LEASE + 60))
    retried = Counter(w.retried for w in unanswered)
    for write in unanswered:
        write.status = write.retried
    after_resend = audit(load.writes, read_state(url))
    unexpected = {s: n for s, n in statuses.items() if s is not None and not 200 <= s < 300}
    verdicts = [(not unexpected, f"answers other than 2xx during the drill: {unexpected or 0}")]
    verdicts += [(ok, "after restart: " + text) for ok, text in after_restart]
    all_2xx = all(s is not None and 200 <= s < 300 for s in retried.elements())
    verdicts += [(all_2xx, f"unanswered writes sent again: {len(unanswered)}, answers {_statuses(retried)}")]
    verdicts += [(ok, "after re-sending: " + text) for ok, text in after_resend[:3]]
    return st.print_verdicts(verdicts)


def _statuses(counts: Counter[int | None]) -> str:
    return ", ".join(f"{'none' if s is None else s}: {n}" for s, n in sorted(counts.items(), key=str)) or "-"


def log_summary(path: Path) -> str:
    meter = st.LogMeter(path)
    meter.read()
    return f"endpoint log: {meter.lines} lines, {meter.bytes / 1024:.0f} KiB, {meter.tracebacks} tracebacks"
