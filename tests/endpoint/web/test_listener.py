"""BoundedHTTPServer: the connection cap, the accept pause when descriptors run out, the start check."""

from __future__ import annotations

import asyncio
import resource
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import tornado.netutil
import tornado.web

from endpoint.web import listener
from endpoint.web.listener import BoundedHTTPServer, DescriptorLimitError, check_descriptor_limit

ROOT = Path(__file__).resolve().parents[3]


class Hello(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("hello")


async def _get(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = await reader.read()
    writer.close()
    return data


def test_connections_beyond_the_cap_are_closed_at_once_and_the_rest_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        server = BoundedHTTPServer(tornado.web.Application([("/", Hello)]), max_connections=3)
        [sock] = tornado.netutil.bind_sockets(0, "127.0.0.1")
        port = sock.getsockname()[1]
        server.add_sockets([sock])
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await asyncio.sleep(0.05)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 2) == b""  # closed at once, nothing served
        writer.close()
        idle[0][1].close()  # one slot frees up
        await asyncio.sleep(0.05)
        assert (await asyncio.wait_for(_get(port), 2)).endswith(b"hello")
        for _, w in idle[1:]:
            w.close()
        server.stop()

    with caplog.at_level("WARNING", logger="endpoint.web.listener"):
        asyncio.run(scenario())
    [record] = caplog.records  # said once, not once per refused connection
    assert "server.max_connections cap" in record.getMessage()


def test_nagle_stays_off_on_a_kept_alive_connection() -> None:
    """Set once per connection; Tornado would switch it back on after every response (two syscalls)."""

    async def scenario() -> int:
        server = BoundedHTTPServer(tornado.web.Application([("/", Hello)]))
        [sock] = tornado.netutil.bind_sockets(0, "127.0.0.1")
        server.add_sockets([sock])
        reader, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        for _ in range(2):
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await asyncio.wait_for(reader.readuntil(b"hello"), 2)).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.05)
        [connection] = server._connections
        nodelay = connection.stream.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        writer.close()
        server.stop()
        return int(nodelay)

    assert asyncio.run(scenario()) == 1


def test_the_sweeper_closes_idle_and_slow_body_connections_but_never_a_running_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """idle_connection_timeout and body_timeout, enforced by one sweep a second (no timer per request)."""

    async def scenario() -> dict[str, float]:
        server = BoundedHTTPServer(
            tornado.web.Application([("/", Hello), ("/slow", Slow)]),
            idle_connection_timeout=1,
            body_timeout=1,
        )
        [sock] = tornado.netutil.bind_sockets(0, "127.0.0.1")
        port = sock.getsockname()[1]
        server.add_sockets([sock])
        started = time.monotonic()
        closed: dict[str, float] = {}

        async def watch(name: str, first: bytes) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(first)
            data = await asyncio.wait_for(reader.read(), 10)
            closed[name] = time.monotonic() - started
            closed[name + " answered"] = float(b"hello" in data)
            writer.close()

        await asyncio.gather(
            watch("idle", b""),  # never sends its headers
            watch("slow body", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"),
            watch("slow handler", b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
        server.stop()
        return closed

    with caplog.at_level("WARNING", logger="endpoint.web.listener"):
        closed = asyncio.run(scenario())
    assert 1 <= closed["idle"] < 3 and not closed["idle answered"]
    assert 1 <= closed["slow body"] < 3 and not closed["slow body answered"]
    assert closed["slow handler"] >= 2.5 and closed["slow handler answered"]  # the handler's time is its own
    assert [r.getMessage() for r in caplog.records] == [
        "closed 2 connections past idle_connection_timeout or body_timeout (1 times since the last report)"
    ]


class Slow(tornado.web.RequestHandler):
    async def get(self) -> None:
        await asyncio.sleep(2.5)
        self.write("hello")


def test_a_sweep_closes_by_phase_and_limit() -> None:
    server = BoundedHTTPServer(tornado.web.Application([]), idle_connection_timeout=5, body_timeout=2)

    class Connection:
        def __init__(self) -> None:
            self.stream = self
            self.closed = False

        def close(self) -> None:
            self.closed = True

    idle, reading, handling, fresh = Connection(), Connection(), Connection(), Connection()
    server._phases.update(
        {idle: ("headers", 0.0), reading: ("body", 7.5), handling: ("handler", 0.0), fresh: ("headers", 6.0)}
    )
    assert server._sweep(now=10.0) == 2
    assert (idle.closed, reading.closed, handling.closed, fresh.closed) == (True, True, False, False)
    assert set(server._phases) == {handling, fresh}


def test_the_start_check_raises_the_soft_limit_when_the_hard_one_allows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []
    monkeypatch.setattr(resource, "getrlimit", lambda kind: (256, 4096))
    monkeypatch.setattr(resource, "setrlimit", lambda kind, limits: calls.append(limits))
    assert check_descriptor_limit(512) == 512 + listener.RESERVED_DESCRIPTORS
    assert calls == [(640, 4096)]


def test_the_start_check_names_the_setting_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda kind: (256, 512))
    with pytest.raises(DescriptorLimitError) as info:
        check_descriptor_limit(512)
    message = str(info.value)
    assert message.startswith("server.max_connections: 512 connections need 640 file descriptors")
    assert "ulimit -n" in message and "\n" not in message


def test_serve_refuses_to_start_when_the_limit_cannot_hold_the_cap(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-c",
        "import resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)); "
        "from endpoint.commands.cli import main; sys.exit(main())",
        "serve",
        "--db",
        f"sqlite:///{tmp_path / 'c.db'}",
        "--public-url",
        "https://connector.example.com/",
        "--port",
        "0",
        "--set",
        "server.max_connections=1000",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    expected = "configuration error: server.max_connections: 1000 connections need"
    assert done.stderr.strip().startswith(expected)
    assert "Traceback" not in done.stderr


SERVER = textwrap.dedent(
    """
    import asyncio, logging, resource, sys
    import tornado.netutil, tornado.web
    from endpoint.web.listener import BoundedHTTPServer

    class Hello(tornado.web.RequestHandler):
        def get(self):
            self.write("hello")

    async def main():
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        [sock] = tornado.netutil.bind_sockets(0, "127.0.0.1")
        # The cap above the descriptor limit on purpose: the accept loop itself must cope with EMFILE.
        BoundedHTTPServer(tornado.web.Application([("/", Hello)]), max_connections=10_000).add_sockets([sock])
        resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))
        print(sock.getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks (USER_HZ = 100)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to read the server's CPU time")
def test_running_out_of_descriptors_pauses_accepting_instead_of_spinning() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    held: list[socket.socket] = []
    try:
        port = int(process.stdout.readline())  # type: ignore[union-attr]
        for _ in range(80):  # more than the 48 descriptors the server may open
            held.append(socket.create_connection(("127.0.0.1", port)))
        before = _cpu_seconds(process.pid)
        time.sleep(2)
        spent = _cpu_seconds(process.pid) - before
        assert spent < 0.5, f"the accept loop spun: {spent:.2f}s of CPU in 2s"
        for s in held:
            s.close()
        held.clear()
        time.sleep(listener.ACCEPT_BACKOFF + 0.3)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert s.recv(4096).endswith(b"hello")  # served again once descriptors are free
    finally:
        for s in held:
            s.close()
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    lines = [line for line in stderr.splitlines() if line]
    assert 1 <= len(lines) <= 3, stderr[-2000:]  # said once per interval, no traceback flood
    assert "out of file descriptors (EMFILE)" in lines[0] and "Traceback" not in stderr
