"""BoundedHTTPServer: Tornado's HTTPServer with a connection cap and an accept loop that survives EMFILE.

Tornado's accept handler lets any OSError but EAGAIN/ECONNABORTED escape. Out of descriptors (EMFILE,
ENFILE), the listening socket stays readable, so the loop calls it again at once: measured 99.9 % CPU,
280,000 tracebacks in 20 s and no request served. Here the accept loop pauses for ``ACCEPT_BACKOFF``
seconds instead (the kernel keeps queueing in the backlog) and says so once per ``LOG_INTERVAL``; and a
connection beyond ``max_connections`` is closed as soon as it is accepted, so the process never gets
near its descriptor limit in the first place (``check_descriptor_limit`` proves that at start).
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
from tornado.ioloop import IOLoop

log = logging.getLogger(__name__)

ACCEPT_BACKOFF = 0.5  # seconds without accept() after the process ran out of descriptors
LOG_INTERVAL = 10.0  # at most one line per interval about refused or postponed connections
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


class BoundedHTTPServer(tornado.httpserver.HTTPServer):
    """HTTPServer(..., max_connections=N): at most N open client connections in this process."""

    def initialize(self, *args: Any, max_connections: int = 512, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self.max_connections = max_connections
        self._over_cap = _Throttled("connection refused: %d connections open, the server.max_connections cap")
        self._exhausted = _Throttled("out of file descriptors (%s): accepting paused for %.1fs")

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
