"""BackgroundServer: serves in a named daemon thread, and stop() really closes the listener."""

from __future__ import annotations

import socket
import socketserver
import threading

import pytest

from simulators.background import BackgroundServer


class _Echo(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(self.rfile.readline())


class EchoServer(BackgroundServer):
    thread_name = "echo-sim"

    def __init__(self) -> None:
        super().__init__(socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo))

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])


def test_start_serves_in_a_named_thread_and_stop_closes_the_port() -> None:
    server = EchoServer().start()
    assert any(t.name == "echo-sim" and t.daemon for t in threading.enumerate())
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(b"ping\n")
        assert conn.makefile("rb").readline() == b"ping\n"
    server.stop()
    assert not any(t.name == "echo-sim" for t in threading.enumerate())
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_serve_forever_in_the_caller_closes_the_listener_after_shutdown() -> None:
    server = EchoServer()
    runner = threading.Thread(target=server.serve_forever)
    runner.start()
    server._server.shutdown()  # what a CLI's signal handler does
    runner.join(5)
    assert not runner.is_alive() and server._server.socket.fileno() == -1
