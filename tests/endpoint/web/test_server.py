"""serve(): ready URLs, graceful stop, the periodic purge, the server limits, and run()'s refusals."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import peewee as pw
import pytest
import tornado.httpclient
import tornado.netutil

import endpoint.web.server as server_module
from endpoint.config.settings import Settings
from endpoint.runtime import Runtime, build_runtime
from endpoint.web.server import build_server, run, serve
from models import Nonce, db
from models.db import DatabaseSettings
from tests.endpoint.web.gateway import bearer_callback, gateway_endpoint, gateway_settings, wait_jwks
from tests.support.builders import PUBLIC_URL, create_consumer, make_settings, sign
from tests.support.gateway_tokens import JwksServer, jwks, public_jwk, token
from tests.support.simulator_processes import Tls, make_tls
from tests.support.two_partner_tenancy import build_tenancy

LOGGERS = ("", "oauthlib", "peewee", "tornado.access")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """run() configures logging for the process: undo it."""
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level) for name in LOGGERS}
    yield
    for name, (handlers, level) in saved.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def settings(database: pw.Database, db_settings: DatabaseSettings) -> Settings:
    return make_settings(database=db_settings)


@pytest.fixture
def runtimes(monkeypatch: pytest.MonkeyPatch) -> list[Runtime]:
    """Every Runtime that serve() builds."""
    built: list[Runtime] = []

    def recording(settings: Settings) -> Runtime:
        built.append(build_runtime(settings))
        return built[-1]

    monkeypatch.setattr(server_module, "build_runtime", recording)
    return built


Body = Callable[[int], Awaitable[None]]


def serving(settings: Settings, body: Body, stop_after: bool = True) -> list[str]:
    """Run serve() on a fresh loopback socket, run ``body(port)`` against it, then stop and join."""

    async def main() -> list[str]:
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        port = sockets[0].getsockname()[1]
        stop, ready = asyncio.Event(), asyncio.Event()
        urls: list[str] = []

        def on_ready(found: list[str]) -> None:
            urls.extend(found)
            ready.set()

        task = asyncio.ensure_future(serve(settings, sockets, ready=on_ready, stop=stop))
        await asyncio.wait_for(ready.wait(), 5)
        try:
            await body(port)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
        return urls

    return asyncio.run(main())


def raw_exchange(port: int, data: bytes, timeout: float = 5) -> tuple[bytes, float]:
    """Send ``data``, read until the server closes; returns the reply and how long that took."""
    started = time.monotonic()
    reply = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(data)
        try:
            while chunk := conn.recv(4096):
                reply += chunk
        except ConnectionResetError:
            pass
    return reply, time.monotonic() - started


async def fetch(port: int, path: str, **kwargs: Any) -> tornado.httpclient.HTTPResponse:
    client = tornado.httpclient.AsyncHTTPClient()
    return await client.fetch(f"http://127.0.0.1:{port}{path}", raise_error=False, **kwargs)


# -- serve -----------------------------------------------------------------------------------------
def test_ready_gets_the_urls_and_stop_returns(settings: Settings, runtimes: list[Runtime]) -> None:
    seen: dict[str, Any] = {}

    async def body(port: int) -> None:
        seen["port"] = port
        seen["health"] = (await fetch(port, "/healthz")).code

    urls = serving(settings, body)
    assert urls == [f"http://127.0.0.1:{seen['port']}/"]
    assert seen["health"] == 200
    with pytest.raises(ConnectionRefusedError):  # the listening socket is gone
        socket.create_connection(("127.0.0.1", seen["port"]), timeout=2).close()
    [runtime] = runtimes
    with pytest.raises(RuntimeError):  # and the executors were shut down
        asyncio.run(runtime.db.run(lambda: None))


def test_stop_closes_idle_keep_alive_connections(settings: Settings, runtimes: list[Runtime]) -> None:
    holder: dict[str, socket.socket] = {}

    async def body(port: int) -> None:
        conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.2)
        holder["conn"] = conn

    serving(settings, body)
    with holder["conn"] as conn:
        data = b""
        while chunk := conn.recv(4096):  # ends: the server closed the kept-alive connection
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")


def test_an_in_flight_request_finishes_during_stop(
    settings: Settings, runtimes: list[Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("endpoint.web.health._ping_database", lambda: time.sleep(0.5))
    result: dict[str, Any] = {}

    async def main() -> None:
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        port = sockets[0].getsockname()[1]
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.ensure_future(serve(settings, sockets, ready=lambda _: ready.set(), stop=stop))
        await ready.wait()
        in_flight = asyncio.ensure_future(fetch(port, "/healthz"))
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.wait_for(task, 10)
        try:
            result["code"] = (await in_flight).code
        except Exception as e:  # the stream was closed under the request
            result["code"] = repr(e)

    asyncio.run(main())
    assert result["code"] == 200


def test_the_periodic_purge_is_wired(
    settings: Settings, runtimes: list[Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Nonce.record("acme-key-0001", "old-nonce-001", int(time.time()) - 3600)
    assert Nonce.record("acme-key-0001", "new-nonce-001", int(time.time()))
    calls: list[tuple[Any, str, bool]] = []
    real = server_module.purge_expired

    def spy(endpoint_settings: Any, now: float) -> tuple[int, int]:
        calls.append((endpoint_settings, threading.current_thread().name, not db.is_closed()))
        return real(endpoint_settings, now)

    monkeypatch.setattr(server_module, "PURGE_INTERVAL_MS", 20)
    monkeypatch.setattr(server_module, "purge_expired", spy)

    async def body(port: int) -> None:
        deadline = time.monotonic() + 5
        while not calls and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)

    serving(settings, body)
    assert calls, "purge_expired never ran"
    endpoint_settings, thread_name, connection_open = calls[0]
    assert endpoint_settings is settings.endpoint
    assert thread_name.startswith("db") and connection_open  # in the database runner's unit of work
    assert [n.nonce for n in Nonce.select()] == ["new-nonce-001"]


def test_a_failing_purge_is_logged_not_raised(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any) -> None:
        raise pw.OperationalError("database is locked")

    monkeypatch.setattr(server_module, "purge_expired", broken)
    runtime = build_runtime(settings)

    async def main() -> None:
        server_module._purge(runtime)
        await asyncio.sleep(0.2)

    try:
        with caplog.at_level(logging.WARNING, logger="endpoint.web.server"):
            asyncio.run(main())
    finally:
        runtime.close()
    assert any("purge failed: database is locked" in r.getMessage() for r in caplog.records)


def test_url_of_an_ipv6_socket() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    try:
        sock = socket.socket(socket.AF_INET6)
        sock.bind(("::1", 0))
    except OSError as e:
        pytest.skip(f"cannot bind ::1: {e}")
    with sock:
        assert server_module._url(sock) == f"http://[::1]:{sock.getsockname()[1]}/"


# -- build_server ----------------------------------------------------------------------------------
def test_build_server_applies_the_limits(settings: Settings) -> None:
    settings = make_settings(
        database=settings.database,
        server={"max_header_size": 4096, "body_timeout": 2.5, "idle_connection_timeout": 7.0},
        endpoint={"max_body_size": 2048},
    )
    runtime = build_runtime(settings)
    try:
        server = build_server(settings, runtime)
    finally:
        runtime.close()
    params = server.conn_params
    assert (params.max_header_size, params.max_body_size) == (4096, 2048)
    # Enforced by the server's sweeper (listener.py), not by a timer around every read.
    assert server.slow_client_limits == {"headers": 7.0, "body": 2.5}
    assert (params.header_timeout, params.body_timeout) == (None, None)
    assert server.xheaders is False  # forwarding headers are judged by forwarding.py, not trusted
    assert params.decompress is False  # no gzip bombs


def test_a_huge_header_closes_the_connection(settings: Settings, runtimes: list[Runtime]) -> None:
    small = make_settings(database=settings.database, server={"max_header_size": 2048})
    replies: list[bytes] = []

    async def body(port: int) -> None:
        for size in (1000, 3000):
            request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: %s\r\n\r\n" % (
                b"a" * size
            )
            reply, _ = await asyncio.to_thread(raw_exchange, port, request)
            replies.append(reply)

    serving(small, body)
    assert replies[0].startswith(b"HTTP/1.1 200")
    assert not replies[1].startswith(b"HTTP/1.1 200")  # closed without running any handler


def test_a_slow_body_is_cut_off_after_body_timeout(settings: Settings, runtimes: list[Runtime]) -> None:
    quick = make_settings(database=settings.database, server={"body_timeout": 0.3})
    create_consumer()  # a verified request: unsigned ones never get to send a body (test_callback.py)
    result: dict[str, Any] = {}
    signed = sign("POST", PUBLIC_URL + "callback")["Authorization"].encode()

    async def body(port: int) -> None:
        request = (
            b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: " + signed + b'\r\nContent-Length: 100\r\n\r\n{"a"'
        )
        result["reply"], result["elapsed"] = await asyncio.to_thread(raw_exchange, port, request, 10)

    serving(quick, body)
    assert result["reply"] == b"" and result["elapsed"] < 3  # the default would wait 15 s


# -- run() -----------------------------------------------------------------------------------------
def test_run_refuses_a_missing_public_url(capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(endpoint={"public_base_url": ""})
    assert run(argparse.Namespace(workers=None), settings) == 2
    err = capsys.readouterr().err
    assert err.startswith("configuration error: endpoint.public_base_url: required")


def test_run_refuses_a_taken_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = make_settings(server={"host": "127.0.0.1", "port": port})
        assert run(argparse.Namespace(workers=None), settings) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cannot listen on 127.0.0.1:{port}: ") and "in use" in err.lower()


def test_run_forks_the_requested_workers(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, runtimes: list[Runtime]
) -> None:
    forks: list[int] = []

    def run_workers(count: int, child: Any) -> int:
        forks.append(count)
        return 0

    async def no_serve(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(server_module, "run_workers", run_workers)
    monkeypatch.setattr(server_module, "serve", no_serve)
    try:
        assert run(argparse.Namespace(workers=3), settings) == 0
    finally:
        db.obj.close_all()  # run() bound the proxy to its own pool
    assert forks == [3]


# -- the gateway's JWKS: fetched on its own thread, retried, never emptied -----------------------------
@pytest.fixture(scope="module")
def gateway_tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("jwks-tls"))


@pytest.fixture
def jwks_server(gateway_tls: Tls) -> Iterator[JwksServer]:
    with JwksServer(gateway_tls.cert_pem, gateway_tls.key_pem) as server:
        yield server


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries and unknown-kid refetches every 0.3 s instead of every minute."""
    monkeypatch.setattr("endpoint.auth.jwks.MIN_REFETCH_INTERVAL", 0.3)


def test_serves_while_the_jwks_is_down_at_start_then_picks_the_keys_up(
    database: pw.Database,
    db_settings: DatabaseSettings,
    jwks_server: JwksServer,
    gateway_tls: Tls,
    fast_retries: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    build_tenancy()
    jwks_server.status = 503
    settings = gateway_settings(db_settings, jwks_server, gateway_tls, ("oauth1", "acronis_jwt"))
    caplog.set_level(logging.WARNING, logger="endpoint.auth.jwks")
    with gateway_endpoint(settings, keys=False) as live:
        state = wait_jwks(live, "no keys", last_error="JwksRefused")
        assert state["last_success"] is None and state["keys"] == 0
        refused = bearer_callback(live, token())
        assert refused.status_code == 503 and 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.json()["err_message"] == "Service unavailable."
        assert live.callback("a.p.enablement.read.v1.0").status_code == 200  # OAuth is unaffected
        jwks_server.status = 200
        assert wait_jwks(live)["keys"] == 1  # the periodic retry brought the keys
        assert bearer_callback(live, token()).status_code == 200
    warnings = [r.getMessage() for r in caplog.records if r.name == "endpoint.auth.jwks"]
    assert len(warnings) == 1 and "gateway tokens get 503 until a fetch succeeds" in warnings[0]


def test_a_failed_refresh_later_keeps_the_last_good_keys(
    database: pw.Database,
    db_settings: DatabaseSettings,
    jwks_server: JwksServer,
    gateway_tls: Tls,
    fast_retries: None,
) -> None:
    build_tenancy()
    with gateway_endpoint(gateway_settings(db_settings, jwks_server, gateway_tls)) as live:
        jwks_server.status = 503  # the identity provider goes down
        time.sleep(0.3)
        assert bearer_callback(live, token(index=1)).status_code == 401  # unknown kid: a refetch, which fails
        state = wait_jwks(live, "stale", last_error="JwksRefused")
        assert state["keys"] == 1 and state["last_success"]
        assert bearer_callback(live, token()).status_code == 200  # still verifying with the last good key


def test_a_key_rotation_at_the_jwks_is_picked_up_on_the_unknown_kid(
    database: pw.Database,
    db_settings: DatabaseSettings,
    jwks_server: JwksServer,
    gateway_tls: Tls,
    fast_retries: None,
) -> None:
    build_tenancy()
    with gateway_endpoint(gateway_settings(db_settings, jwks_server, gateway_tls)) as live:
        jwks_server.document = jwks(public_jwk(1))  # rotated: key 0 withdrawn, key 1 signs from now on
        time.sleep(0.3)
        statuses = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            statuses.append(bearer_callback(live, token(index=1)).status_code)
            if statuses[-1] == 200:
                break
            time.sleep(0.05)
        assert statuses[0] == 401 and statuses[-1] == 200  # refused until the refetch it asked for landed
        assert (
            bearer_callback(live, token(index=0)).status_code == 401
        )  # the withdrawn key no longer verifies
        assert wait_jwks(live)["keys"] == 1
