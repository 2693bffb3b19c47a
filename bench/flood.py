"""A bounded flood on 127.0.0.1: waves of connections each pushing a garbage-authorized 1 MiB POST, held open.

Every wave opens ``connections`` non-blocking sockets, sends the headers and as much of the body as the
server reads within ``hold`` seconds, reads (and counts) whatever answers arrive, then closes every socket.
The server's peak RSS over the whole flood is its tree's VmHWM (reset before the first wave).
"""

from __future__ import annotations

import errno
import resource
import selectors
import socket
import time
from dataclasses import dataclass, field

from bench.proc_stats import current_rss_mb
from bench.processes import peak_rss_mb, reset_peak_rss

HOST = "127.0.0.1"  # never anything else


@dataclass
class FloodResult:
    waves: int = 0
    attempted: int = 0  # sockets opened (connections x waves)
    connections: int = 0  # sockets that connected
    connect_failures: int = 0
    full_bodies: int = 0  # connections whose whole body the server took
    bytes_sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)  # answers seen while the wave was held
    closed_by_server: int = 0
    peak_rss_mb: float = 0.0  # server tree VmHWM over the flood
    sampled_rss_mb: float = 0.0  # highest sampled VmRSS sum (cross-check)
    rss_after_mb: float = 0.0  # VmRSS sum once the sockets are closed and the server had a second
    seconds: float = 0.0
    aborted: str = ""


class _Conn:
    __slots__ = ("sock", "offset", "connected", "answered")

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.offset, self.connected, self.answered = sock, 0, False, False


def _request_head(port: int, body_size: int) -> bytes:
    return (
        f"POST /callback HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: OAuth garbage\r\n"
        f"Content-Type: application/json\r\nContent-Length: {body_size}\r\n\r\n"
    ).encode()


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _wave(
    port: int,
    pid: int,
    connections: int,
    payload: memoryview,
    hold: float,
    result: FloodResult,
    rss_abort_mb: float,
) -> None:
    selector = selectors.DefaultSelector()
    conns: list[_Conn] = []
    deadline = time.monotonic() + hold
    try:
        for _ in range(connections):
            result.attempted += 1
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            code = sock.connect_ex((HOST, port))
            if code not in (0, errno.EINPROGRESS):
                result.connect_failures += 1
                sock.close()
                continue
            conn = _Conn(sock)
            conns.append(conn)
            selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
        next_sample = 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= next_sample:
                rss = current_rss_mb(pid)
                result.sampled_rss_mb = max(result.sampled_rss_mb, rss)
                next_sample = time.monotonic() + 0.1
                if rss > rss_abort_mb:
                    result.aborted = f"server RSS {rss:.0f} MB > {rss_abort_mb:.0f} MB safety limit"
                    return
            if not selector.get_map():
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
                continue
            for key, events in selector.select(timeout=0.05):
                _service(key.data, events, payload, selector, result)
    finally:
        for conn in conns:
            try:
                selector.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
            conn.sock.close()
        selector.close()


def _service(
    conn: _Conn, events: int, payload: memoryview, selector: selectors.BaseSelector, result: FloodResult
) -> None:
    sock = conn.sock
    try:
        if events & selectors.EVENT_WRITE:
            if not conn.connected:
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    result.connect_failures += 1
                    selector.unregister(sock)
                    return
                conn.connected = True
                result.connections += 1
            sent = sock.send(payload[conn.offset : conn.offset + 262144])
            conn.offset += sent
            result.bytes_sent += sent
            if conn.offset >= len(payload):
                result.full_bodies += 1
                selector.modify(sock, selectors.EVENT_READ, conn)
        if events & selectors.EVENT_READ:
            data = sock.recv(65536)
            if not data:
                result.closed_by_server += 1
                selector.unregister(sock)
            elif not conn.answered and data.startswith(b"HTTP/1."):
                conn.answered = True
                status = int(data[9:12])
                result.statuses[status] = result.statuses.get(status, 0) + 1
    except BlockingIOError:
        pass
    except OSError:  # reset or refused by the server
        result.closed_by_server += 1
        if sock in selector.get_map():
            selector.unregister(sock)


def flood(
    port: int,
    pid: int,
    connections: int = 1000,
    body_size: int = 1 << 20,
    hold: float = 2.0,
    waves: int = 2,
    rss_abort_mb: float = 4096,
) -> FloodResult:
    """Bounded: ``waves`` x (``connections`` sockets for ``hold`` s), then every socket is closed."""
    _raise_fd_limit(connections + 256)
    payload = memoryview(_request_head(port, body_size) + b"x" * body_size)
    result = FloodResult()
    started = time.monotonic()
    reset_peak_rss(pid)
    for wave in range(waves):
        if wave:
            time.sleep(0.5)
        _wave(port, pid, connections, payload, hold, result, rss_abort_mb)
        result.waves += 1
        if result.aborted:
            break
    result.peak_rss_mb = max(peak_rss_mb(pid), result.sampled_rss_mb)  # VmHWM, or a sample a hair above it
    result.seconds = time.monotonic() - started
    time.sleep(1.0)
    result.rss_after_mb = current_rss_mb(pid)
    return result
