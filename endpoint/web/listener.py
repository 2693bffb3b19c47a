"""BoundedHTTPServer: Tornado's HTTPServer with a connection cap, an accept loop that survives EMFILE, and
one sweeper for slow clients instead of two timers per request.

Tornado's accept handler lets any OSError but EAGAIN/ECONNABORTED escape. Out of descriptors (EMFILE,
ENFILE), the listening socket stays readable, so the loop calls it again at once: measured 99.9 % CPU,
280,000 tracebacks in 20 s and no request served. Here the accept loop pauses for ``ACCEPT_BACKOFF``
seconds instead (the kernel keeps queueing in the backlog) and says so once per ``LOG_INTERVAL``; and a
connection beyond ``max_connections`` is closed as soon as it is accepted, so the process never gets
near its descriptor limit in the first place (``check_descriptor_limit`` proves that at start).

Slow clients: Tornado enforces ``idle_connection_timeout`` (waiting for a request's headers) and
``body_timeout`` (reading its body) by wrapping both reads of every request in ``gen.with_timeout``, a
timer set and cancelled twice per request (~5 % of a callback's CPU, measured with py-spy). Here each
connection only notes which phase it is in and since when (``_Phases``), and one sweep per
``SWEEP_INTERVAL`` closes the connections past their phase's limit: the same limits, enforced up to one
interval late. The handler phase has no limit, as in Tornado.
"""

from __future__ import annotations

import errno
import logging
import resource
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

import tornado.httpserver
from tornado.httputil import HTTPConnection, HTTPHeaders, HTTPMessageDelegate, RequestStartLine
from tornado.ioloop import IOLoop, PeriodicCallback
from tornado.iostream import IOStream

log = logging.getLogger(__name__)

ACCEPT_BACKOFF = 0.5  # seconds without accept() after the process ran out of descriptors
LOG_INTERVAL = 10.0  # at most one line per interval about refused or postponed connections
SWEEP_INTERVAL = 1.0  # seconds between two looks for connections past their header or body limit
ACCEPTS_PER_WAKEUP = 128  # as Tornado: bounded, so accepting never starves the requests in flight
# Descriptors a process needs besides its client connections: listening sockets, database connections,
# log files, the executors' wake-up pipes, outbound sessions.
RESERVED_DESCRIPTORS = 128
_OUT_OF_DESCRIPTORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class DescriptorLimitError(Exception):
    """The descriptor limit cannot hold ``server.max_connections``; the message names the fix."""


def check_descriptor_limit(max_connections: int) -> int:
    """Raise the soft RLIMIT_NOFILE up to the hard one if the cap needs it; returns the soft limit in force.

    :raise DescriptorLimitError: even the hard limit is below ``max_connections`` + RESERVED_DESCRIPTORS.
    """
    needed = max_connections + RESERVED_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard == resource.RLIM_INFINITY or hard >= needed:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
            return needed
        raise DescriptorLimitError(
            f"server.max_connections: {max_connections} connections need {needed} file descriptors, but the "
            f"limit is {soft} (hard {hard}); lower server.max_connections or raise the limit "
            "(ulimit -n, systemd LimitNOFILE=)"
        )
    return soft


class _Throttled:
    """Counts an event and logs it at most once per LOG_INTERVAL (the first occurrence at once)."""

    def __init__(self, message: str) -> None:
        self._message = message
        self._count = 0
        self._last = float("-inf")

    def __call__(self, *args: Any) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._last >= LOG_INTERVAL:
            log.warning(self._message + " (%d times since the last report)", *args, self._count)
            self._count, self._last = 0, now


HEADERS, BODY, HANDLER = "headers", "body", "handler"


class _Phases(HTTPMessageDelegate):
    """Wraps one request's delegate to note its connection's phase: headers, body, then the handler."""

    __slots__ = ("_delegate", "_phases", "_connection")

    def __init__(self, delegate: HTTPMessageDelegate, phases: dict[Any, tuple[str, float]], connection: Any):
        self._delegate, self._phases, self._connection = delegate, phases, connection
        phases[connection] = (HEADERS, time.monotonic())

    def headers_received(self, start_line: RequestStartLine, headers: HTTPHeaders) -> Any:  # type: ignore[override]
        self._phases[self._connection] = (BODY, time.monotonic())
        return self._delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Any:
        return self._delegate.data_received(chunk)

    def finish(self) -> None:
        self._phases[self._connection] = (HANDLER, 0.0)
        self._delegate.finish()

    def on_connection_close(self) -> None:
        self._phases.pop(self._connection, None)
        self._delegate.on_connection_close()


def _nodelay_for_good(stream: IOStream) -> None:
    """TCP_NODELAY once per connection, and Tornado's per-request toggling switched off.

    Tornado turns Nagle off when a response ends and back on after it, two setsockopt calls per request
    (~1 % of a callback's CPU), so that a response written in pieces goes out as few packets. Ours are
    written in one piece (headers and body together), which Nagle could only delay.
    """
    stream.set_nodelay(True)
    stream.set_nodelay = _keep_nodelay  # type: ignore[method-assign]


def _keep_nodelay(value: bool) -> None:
    pass


class BoundedHTTPServer(tornado.httpserver.HTTPServer):
    """HTTPServer(..., max_connections=N): at most N open client connections in this process."""

    def initialize(self, *args: Any, max_connections: int = 512, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        # The sweeper enforces these; Tornado would time each read of each request (see the module doc).
        params = self.conn_params
        self.slow_client_limits = {HEADERS: params.header_timeout, BODY: params.body_timeout}
        params.header_timeout = params.body_timeout = None
        self._phases: dict[Any, tuple[str, float]] = {}  # server connection -> (phase, since)
        self._sweeper = PeriodicCallback(self._sweep, SWEEP_INTERVAL * 1000)
        self.max_connections = max_connections
        self._over_cap = _Throttled("connection refused: %d connections open, the server.max_connections cap")
        self._exhausted = _Throttled("out of file descriptors (%s): accepting paused for %.1fs")
        self._slow = _Throttled("closed %d connections past idle_connection_timeout or body_timeout")

    def start_request(self, server_conn: object, request_conn: HTTPConnection) -> HTTPMessageDelegate:
        if not self._sweeper.is_running():
            self._sweeper.start()
        return _Phases(super().start_request(server_conn, request_conn), self._phases, server_conn)

    def on_close(self, server_conn: object) -> None:
        self._phases.pop(server_conn, None)
        super().on_close(server_conn)

    def handle_stream(self, stream: IOStream, address: Any) -> None:
        _nodelay_for_good(stream)
        super().handle_stream(stream, address)

    def stop(self) -> None:
        self._sweeper.stop()
        super().stop()

    def _sweep(self, now: float | None = None) -> int:
        """Close the connections past their phase's limit; returns how many."""
        now = time.monotonic() if now is None else now
        late = [
            connection
            for connection, (phase, since) in self._phases.items()
            if (limit := self.slow_client_limits.get(phase)) is not None and now - since > limit
        ]
        for connection in late:
            self._phases.pop(connection, None)
            connection.stream.close()
        if late:
            self._slow(len(late))
        return len(late)

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = self._accept_on(sock)

    def _handle_connection(self, connection: socket.socket, address: Any) -> None:
        if len(self._connections) >= self.max_connections:
            connection.close()  # at once: a refused connection must not hold a descriptor
            self._over_cap(len(self._connections))
            return
        super()._handle_connection(connection, address)

    def _accept_on(self, sock: socket.socket) -> Callable[[], None]:
        """Tornado's add_accept_handler, with a pause instead of a spin when descriptors run out."""
        io_loop = IOLoop.current()
        state = {"removed": False, "paused": False}

        def resume() -> None:
            if not state["removed"] and state["paused"]:
                state["paused"] = False
                io_loop.add_handler(sock, accept, IOLoop.READ)

        def accept(fd: Any, events: int) -> None:
            for _ in range(ACCEPTS_PER_WAKEUP):
                if state["removed"] or state["paused"]:
                    return
                try:
                    connection, address = sock.accept()
                except BlockingIOError:
                    return
                except ConnectionAbortedError:
                    continue
                except OSError as e:
                    if e.errno not in _OUT_OF_DESCRIPTORS:
                        raise
                    state["paused"] = True
                    io_loop.remove_handler(sock)
                    io_loop.call_later(ACCEPT_BACKOFF, resume)
                    self._exhausted(errno.errorcode.get(e.errno or 0, "?"), ACCEPT_BACKOFF)
                    return
                self._handle_connection(connection, address)

        def remove() -> None:
            if not state["paused"]:
                io_loop.remove_handler(sock)
            state["removed"] = True

        io_loop.add_handler(sock, accept, IOLoop.READ)
        return remove
