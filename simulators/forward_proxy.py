"""A small threaded forward proxy (CONNECT tunnels + absolute-form) recording every flow, for tests/bench."""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import selectors
import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from simulators.background import BackgroundServer

log = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024
HOP_HEADERS = {"proxy-authorization", "proxy-connection", "connection", "keep-alive"}


class ForwardProxy(BackgroundServer):
    """Loopback forward proxy: ``start()`` serves in threads; ``stop()`` drops every connection at once."""

    thread_name = "forward-proxy"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: tuple[str, str] | None = None,
        record_path: str | None = None,
    ) -> None:
        self.credentials = credentials
        self.record_path = record_path
        self.flows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        super().__init__(_Server((host, port), _Handler))
        self._server.proxy = self

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self.port}"

    def stop(self) -> None:
        """Like a crash: the listener and every open tunnel are closed immediately."""
        super().stop()
        with self._lock:
            for sock in list(self._sockets):
                _close(sock)
            self._sockets.clear()

    def record(self, flow: dict[str, Any]) -> None:
        flow["ts"] = time.time()
        with self._lock:
            self.flows.append(flow)
            if self.record_path:
                with open(self.record_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(flow) + "\n")

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def authorized(self, headers: dict[str, str]) -> bool:
        if self.credentials is None:
            return True
        scheme, _, token = headers.get("proxy-authorization", "").partition(" ")
        raw = ":".join(self.credentials)
        # requests encodes Basic credentials as latin-1, other clients as UTF-8: accept either.
        expected = {base64.b64encode(raw.encode(enc, "replace")).decode() for enc in ("utf-8", "latin-1")}
        return scheme.lower() == "basic" and token.strip() in expected


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    proxy: ForwardProxy


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        proxy = self.server.proxy
        client: socket.socket = self.request
        # A relay must not add Nagle delays: a request's head and body often arrive as two segments.
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        proxy.track(client)
        try:
            self._serve(proxy, client)
        except OSError:
            pass
        finally:
            proxy.untrack(client)
            _close(client)

    def _serve(self, proxy: ForwardProxy, client: socket.socket) -> None:
        pending = b""
        while True:
            head, pending = _read_head(client, pending)
            if head is None:
                return
            method, target, headers = head
            client_port = self.client_address[1]
            if not proxy.authorized(headers):
                proxy.record({"method": method, "target": target, "status": 407, "client_port": client_port})
                client.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="forward-proxy"\r\nContent-Length: 0\r\n\r\n'
                )
                if method == "CONNECT":
                    return
                pending = _skip_body(client, headers, pending)
                continue
            if method == "CONNECT":
                self._tunnel(proxy, client, target, pending, client_port)
                return
            pending = self._forward(proxy, client, method, target, headers, pending, client_port)
            if pending is None:
                return

    def _tunnel(
        self, proxy: ForwardProxy, client: socket.socket, target: str, pending: bytes, client_port: int
    ) -> None:
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
        except (OSError, ValueError):
            proxy.record({"method": "CONNECT", "target": target, "status": 502, "client_port": client_port})
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        proxy.record({"method": "CONNECT", "target": target, "status": 200, "client_port": client_port})
        proxy.track(upstream)
        try:
            upstream.settimeout(None)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if pending:
                upstream.sendall(pending)
            _relay(client, upstream)
        finally:
            proxy.untrack(upstream)
            _close(upstream)

    def _forward(
        self,
        proxy: ForwardProxy,
        client: socket.socket,
        method: str,
        target: str,
        headers: dict[str, str],
        pending: bytes,
        client_port: int,
    ) -> bytes | None:
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return None
        length = int(headers.get("content-length", "0") or 0)
        body, pending = _read_exact(client, pending, length)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        lines = [f"{method} {path} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k not in HOP_HEADERS]
        lines.append("Connection: close")
        try:
            upstream = socket.create_connection((parts.hostname, parts.port or 80), timeout=30)
        except OSError:
            proxy.record({"method": method, "target": target, "status": 502, "client_port": client_port})
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return pending
        proxy.record({"method": method, "target": target, "status": 0, "client_port": client_port})
        proxy.track(upstream)
        try:
            upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            while chunk := upstream.recv(65536):  # Connection: close upstream, so EOF ends the response
                client.sendall(chunk)
        finally:
            proxy.untrack(upstream)
            _close(upstream)
        return None  # the upstream said close; so do we


def _read_head(sock: socket.socket, buf: bytes) -> tuple[tuple[str, str, dict[str, str]] | None, bytes]:
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_HEAD:
            return None, b""
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        buf += chunk
    raw, _, rest = buf.partition(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    try:
        method, target, _version = lines[0].split(" ", 2)
    except ValueError:
        return None, b""
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return (method.upper(), target, headers), rest


def _read_exact(sock: socket.socket, buf: bytes, length: int) -> tuple[bytes, bytes]:
    while len(buf) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("client closed mid-body")
        buf += chunk
    return buf[:length], buf[length:]


def _skip_body(sock: socket.socket, headers: dict[str, str], buf: bytes) -> bytes:
    _, rest = _read_exact(sock, buf, int(headers.get("content-length", "0") or 0))
    return rest


def _relay(a: socket.socket, b: socket.socket) -> None:
    peers = {a: b, b: a}
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ)
        selector.register(b, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select(timeout=300):
                src: socket.socket = key.fileobj  # type: ignore[assignment]
                data = src.recv(65536)
                if not data:
                    return
                peers[src].sendall(data)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.forward_proxy", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--auth-env", help="variable holding USER:PASSWORD required from clients (407 otherwise)"
    )
    parser.add_argument("--record", help="append one JSON line per flow to this file")
    args = parser.parse_args(argv)
    credentials = None
    if args.auth_env:
        user, _, password = os.environ.get(args.auth_env, "").partition(":")
        credentials = (user, password)
    proxy = ForwardProxy(args.host, args.port, credentials, args.record)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(json.dumps({"listening": proxy.url}), flush=True)
    try:
        proxy.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
