"""``python -m endpoint serve``: bind, serve with explicit limits, purge periodically, stop gracefully."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable

import tornado.httpserver
import tornado.ioloop
import tornado.netutil

from endpoint.config.loader import ConfigError
from endpoint.config.settings import Settings
from endpoint.observability.logsetup import configure_logging
from endpoint.observability.metrics import enable_multiprocess, mark_process_dead
from endpoint.runtime import Runtime, build_runtime
from endpoint.web.app import make_delegate
from endpoint.web.listener import BoundedHTTPServer, DescriptorLimitError, check_descriptor_limit
from endpoint.web.ops import OpsListener
from endpoint.web.prefork import run_workers
from endpoint.work.maintenance import purge_expired
from models import init_database, migrate

log = logging.getLogger(__name__)

PURGE_INTERVAL_MS = 60_000
DRAIN_TIMEOUT = 10.0


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, help="number of serving processes (default 1)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.logging)
    try:
        settings.endpoint.require_public_url()
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    try:
        check_descriptor_limit(settings.server.max_connections)
    except DescriptorLimitError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    try:
        sockets = tornado.netutil.bind_sockets(settings.server.port, settings.server.host)
    except OSError as e:
        print(
            f"cannot listen on {settings.server.host}:{settings.server.port}: {e.strerror}", file=sys.stderr
        )
        return 2
    database = init_database(settings.database)
    migrate(database)
    workers = args.workers or settings.server.workers
    if workers == 1:
        asyncio.run(serve(settings, sockets))
        return 0
    database.close_all()  # no pooled connection may cross the fork
    log.info("serving with %d worker processes", workers)
    if settings.metrics.port is None:
        return run_workers(workers, lambda index: _serve_worker(settings, sockets, index))
    # Every worker counts into files of its own; the first one serves their sum
    # (endpoint/observability/metrics.py).
    directory = tempfile.mkdtemp(prefix="connector-metrics-")
    try:
        enable_multiprocess(directory)
        return run_workers(
            workers, lambda index: _serve_worker(settings, sockets, index), on_exit=mark_process_dead
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _serve_worker(settings: Settings, sockets: list[socket.socket], index: int) -> int:
    """One forked worker: its own database pool, event loop and executors on the shared sockets."""
    init_database(settings.database)
    asyncio.run(serve(settings, sockets, expose_metrics=index == 0))
    return 0


def build_server(settings: Settings, runtime: Runtime) -> tornado.httpserver.HTTPServer:
    """The HTTP server with the limits of security-checklist §8.3 (no xheaders: see forwarding.py)."""
    return BoundedHTTPServer(
        make_delegate(settings, runtime),
        max_connections=settings.server.max_connections,
        xheaders=False,
        decompress_request=False,  # gzip bombs
        max_header_size=settings.server.max_header_size,
        max_body_size=settings.endpoint.max_body_size,
        body_timeout=settings.server.body_timeout,
        idle_connection_timeout=settings.server.idle_connection_timeout,
    )


async def serve(
    settings: Settings,
    sockets: list[socket.socket],
    *,
    ready: Callable[[list[str]], None] | None = None,
    stop: asyncio.Event | None = None,
    expose_metrics: bool = True,
) -> None:
    """Serve on already-bound sockets until ``stop`` is set (default: SIGTERM/SIGINT), then drain.

    ``ready`` gets the serving URLs, then the operations listener's when this process exposes metrics.
    """
    runtime = build_runtime(settings)
    runtime.start()
    server = build_server(settings, runtime)
    server.add_sockets(sockets)
    urls = [_url(sock) for sock in sockets]
    log.info("serving on %s (public URL %s)", ", ".join(urls), settings.endpoint.public_base_url)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    purger = tornado.ioloop.PeriodicCallback(lambda: _purge(runtime), PURGE_INTERVAL_MS)
    purger.start()
    refresher = tornado.ioloop.PeriodicCallback(
        lambda: _refresh_secrets(runtime), settings.endpoint.secrets_refresh * 1000
    )
    refresher.start()
    keys = None
    if runtime.jwks is not None:  # the gateway's JWKS: refreshed, or retried after a failure, on its thread
        keys = tornado.ioloop.PeriodicCallback(runtime.jwks.refresh_if_due, runtime.jwks.tick_interval * 1000)
        keys.start()
    ops = OpsListener(runtime) if expose_metrics and runtime.metrics is not None else None
    if ready is not None:
        ready(urls + ([ops.url] if ops is not None else []))
    try:
        await stop.wait()
    finally:
        log.info("stopping: no new connections; draining in-flight requests")
        if ops is not None:
            ops.stop()
        purger.stop()
        refresher.stop()
        if keys is not None:
            keys.stop()
        server.stop()
        await _drain(server, runtime)
        runtime.close()
        log.info("stopped")


def _purge(runtime: Runtime) -> None:
    # A purge may delete many rows: always on a thread, even where requests run their units inline.
    work = runtime.db.run_in_thread(purge_expired, runtime.settings.endpoint, time.time())
    future = asyncio.ensure_future(work)
    future.add_done_callback(lambda f: f.exception() and log.warning("purge failed: %s", f.exception()))


def _refresh_secrets(runtime: Runtime) -> None:
    """Re-read the consumer secrets (endpoint/auth/consumers.py); a failure keeps the last snapshot."""

    def done(future: asyncio.Future[int]) -> None:
        if future.exception() is not None:
            log.warning(
                "consumer secrets not refreshed (%s); still verifying with the snapshot of %.0fs ago",
                type(future.exception()).__name__,
                runtime.secrets.age or 0,
            )

    asyncio.ensure_future(runtime.db.run(runtime.secrets.load)).add_done_callback(done)


async def _drain(server: tornado.httpserver.HTTPServer, runtime: Runtime) -> None:
    """Let in-flight requests finish (bounded), then close the idle keep-alive connections."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_TIMEOUT
    while len(runtime.inflight) and loop.time() < deadline:
        await asyncio.sleep(0.02)
    if len(runtime.inflight):
        log.warning(
            "%d requests still in flight after %.0fs; closing anyway", len(runtime.inflight), DRAIN_TIMEOUT
        )
    try:
        await asyncio.wait_for(server.close_all_connections(), DRAIN_TIMEOUT)
    except TimeoutError:
        log.warning("connections still open after %.0fs; closing anyway", DRAIN_TIMEOUT)


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
