"""``python -m endpoint push``: ingest the spool and deliver the outbox, once or until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from endpoint.config.loader import ConfigError
from endpoint.config.settings import Settings
from endpoint.observability.logsetup import configure_logging
from endpoint.observability.metrics import PushMetrics
from endpoint.outbox.progress import Progress
from endpoint.outbox.worker import build_worker
from models import MIGRATIONS, init_database
from models.migrations import current_version
from proxy.errors import ConnectorError

log = logging.getLogger(__name__)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true", help="deliver what is due now, then exit")
    parser.add_argument("--no-spool", action="store_true", help="do not ingest the spool directory")
    parser.add_argument(
        "--progress",
        choices=("auto", "tty", "plain"),
        default="auto",
        help="live table (tty), log lines (plain), or tty only when stdout is a terminal (auto)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not logging.getLogger().handlers:  # an embedding process (or pytest) keeps its own logging
        configure_logging(settings.logging)
    database = init_database(settings.database)
    with database.connection_context():
        version = current_version(database)
    if version < MIGRATIONS[-1].version:
        print(
            f"database schema is at version {version}: run `python -m endpoint migrate` first",
            file=sys.stderr,
        )
        return 2
    stop = threading.Event()
    tty = {"auto": None, "tty": True, "plain": False}[args.progress]
    progress = Progress(sys.stdout, tty=tty)
    metrics = _serve_metrics(settings)
    try:
        worker = build_worker(
            settings,
            os.environ,
            stop=stop,
            progress=progress,
            with_spool=not args.no_spool,
            metrics=metrics,
        )
    except (ConfigError, ConnectorError) as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    previous = _install_signals(stop)
    try:
        if not args.once:
            log.info(
                "push: delivering continuously (worker %s); SIGTERM/SIGINT stops after the in-flight request",
                worker.worker,
            )
            worker.run_forever()
            log.info("push: stop requested; stopped after the in-flight request")
            return 0
        worker.start()
        summary = worker.run_once()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    pending = progress.totals().queued
    print(
        f"push: sent={summary.sent} retrying={summary.retried} dead={summary.dead} "
        f"ingested={summary.ingested} pending={pending}"
    )
    for dc, reason in summary.outages.items():
        print(f"push: {dc}: {reason}", file=sys.stderr)
    return 0 if pending == 0 else 1


def _install_signals(stop: threading.Event) -> dict[int, Any]:
    """SIGTERM/SIGINT set ``stop``; returns the previous handlers so they can be restored.

    The handler only sets the event: logging from a signal handler re-enters the stream the main
    thread may be writing to at that instant ("reentrant call inside BufferedWriter") and kills the
    worker; the stop is logged by the loop that notices it.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    return {signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGINT)}


def _serve_metrics(settings: Settings) -> PushMetrics | None:
    """``metrics.push_port``: this worker's /metrics, on a thread of prometheus_client's own."""
    port = settings.metrics.push_port
    if port is None:
        return None
    import prometheus_client

    metrics = PushMetrics()
    server, _ = prometheus_client.start_http_server(port, settings.metrics.host, metrics.exposition)
    log.info("metrics on http://%s:%d/metrics", settings.metrics.host, server.server_address[1])
    return metrics
