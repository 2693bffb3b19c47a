"""A closed-loop HTTP/1.1 load generator: N keep-alive connections replaying pre-built requests.

Requests are built before the clock starts (so signing cost never counts against the server), and
every request is used once, in order: with pre-signed OAuth requests each one carries a fresh nonce.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def p99(self) -> float:
        return self.percentile(99)


@dataclass(frozen=True)
class RunStats:
    """One measured run, whichever load generator produced it (this one or wrk, bench/wrk.py)."""

    expected: int  # requests meant to be sent, each exactly once
    requests: int  # responses received
    errors: int  # transport errors (connect, read, write, timeouts)
    seconds: float
    p50: float  # ms
    p99: float  # ms
    statuses: dict[int, int]
    generator: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def clean(self) -> bool:
        """Every request answered 200, no transport error."""
        return self.errors == 0 and self.statuses == {200: self.expected}


def summarize(result: LoadResult, expected: int) -> RunStats:
    return RunStats(
        expected,
        result.requests,
        result.errors,
        result.seconds,
        result.p50,
        result.p99,
        result.statuses,
        "python",
    )


def build_request(method: str, path: str, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    lines += [
        f"{name}: {value}" for name, value in headers.items() if name.lower() not in ("host", "connection")
    ]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _run(host: str, port: int, payloads: Sequence[bytes], connections: int) -> LoadResult:
    queue = iter(payloads)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for payload in queue:
                start = time.perf_counter()
                writer.write(payload)
                try:
                    status = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                latencies.append(1000 * (time.perf_counter() - start))
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    return LoadResult(len(latencies), errors, elapsed, latencies, statuses)


def run_load(host: str, port: int, payloads: Sequence[bytes], connections: int = 32) -> LoadResult:
    return asyncio.run(_run(host, port, payloads, connections))
