"""The operations listener: ``/metrics`` (Prometheus text) and ``/healthz`` on ``metrics.host:metrics.port``.

A listener of its own, so neither is ever reachable through the public inbound proxy, which forwards to
the serving port only. It also samples the gauges: the in-process ones every SAMPLE_INTERVAL seconds on
the IOLoop, the database-derived ones every DATABASE_INTERVAL seconds on a database thread.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web

from endpoint.errors import Unavailable
from endpoint.runtime import Runtime
from endpoint.web.base import BaseHandler
from endpoint.web.health import HealthHandler, NotFoundHandler
from endpoint.web.requestlog import log_request

log = logging.getLogger(__name__)

SAMPLE_INTERVAL = 5.0
DATABASE_INTERVAL = 15.0


class MetricsHandler(BaseHandler):
    route_label = "metrics"

    def get(self) -> None:
        if self.runtime.metrics is None:
            raise Unavailable(reason="metrics are off")
        body, content_type = self.runtime.metrics.render()
        self.set_header("Content-Type", content_type)
        self.finish(body)


class OpsListener:
    """Started by ``serve`` in the process that exposes the metrics; ``stop()`` on the way out."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings.metrics
        assert settings.port is not None and runtime.metrics is not None
        plain = {"runtime": runtime}
        app = tornado.web.Application(
            [("/metrics", MetricsHandler, plain), ("/healthz", HealthHandler, plain)],
            log_function=log_request,
            default_handler_class=NotFoundHandler,
            default_handler_args=plain,
        )
        self._runtime = runtime
        self._sockets = tornado.netutil.bind_sockets(settings.port, settings.host)
        self._server = tornado.httpserver.HTTPServer(app, xheaders=False, idle_connection_timeout=30)
        self._server.add_sockets(self._sockets)
        self._samplers = [
            tornado.ioloop.PeriodicCallback(runtime.sample_metrics, SAMPLE_INTERVAL * 1000),
            tornado.ioloop.PeriodicCallback(self._sample_database, DATABASE_INTERVAL * 1000),
        ]
        runtime.sample_metrics()
        self._sample_database()
        for sampler in self._samplers:
            sampler.start()
        log.info("metrics on %s", self.url + "metrics")

    @property
    def url(self) -> str:
        host, port = self._sockets[0].getsockname()[:2]
        family = self._sockets[0].family
        return f"http://{'[' + host + ']' if family == socket.AF_INET6 else host}:{port}/"

    def _sample_database(self) -> None:
        metrics = self._runtime.metrics
        assert metrics is not None
        future = asyncio.ensure_future(self._runtime.db.run_in_thread(metrics.sample_database))
        future.add_done_callback(_log_failure)

    def stop(self) -> None:
        for sampler in self._samplers:
            sampler.stop()
        self._server.stop()


def _log_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("metrics: database gauges not sampled (%s)", type(future.exception()).__name__)
