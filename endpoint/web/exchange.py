"""A lean request/response exchange for the hot route, on Tornado's HTTP/1.1 connection directly.

``/callback`` carries nearly all the traffic, and Tornado's RequestHandler costs more per request than
our whole signature check: a bare RequestHandler answering tiny JSON spends 0.109 ms of CPU a request,
a bare HTTPMessageDelegate 0.072 ms (same machine, wrk, 32 connections). The exchange keeps exactly the
behaviour the route had as a RequestHandler -- the header-phase checks of ``endpoint/web/admission.py``,
the error mapping and texts of ``endpoint/web/base.py``, the access line of ``endpoint/web/requestlog.py``
-- and leaves out what it never used (cookies, templates, XSRF, ETags, output transforms).

The route is a Tornado rule target (``Route``, endpoint/web/routing.py); ``Route.start_request`` makes
one ``Exchange`` per request. Headers arrive in ``headers_received``: everything decided there is
answered at once, with ``Connection: close``, and the body is never read. The body arrives in
``data_received``; ``finish`` starts ``handle`` (a coroutine, implemented by the route) with the whole body.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import orjson
from tornado.httputil import (
    HTTPConnection,
    HTTPHeaders,
    HTTPMessageDelegate,
    RequestStartLine,
    ResponseStartLine,
    responses,
)

from endpoint.auth.identity import VerifiedConsumer
from endpoint.auth.nonces import record_nonce
from endpoint.auth.stages import TransportStage
from endpoint.errors import ServiceError, public_message
from endpoint.web.admission import admit, check_framing, record_nonce_late
from endpoint.web.base import incoming_request_id, next_correlation_id, status_for
from endpoint.web.forwarding import client_address
from endpoint.web.requestlog import write_access_line

if TYPE_CHECKING:
    from endpoint.web.routing import Route

log = logging.getLogger(__name__)

JSON = "application/json; charset=utf-8"


class MethodNotAllowed(Exception):
    """A verb the route does not serve: 405, unsigned (acronis-callbacks.md §7: route and method first)."""


class _HttpDate:
    """The Date header, formatted once per second rather than per response."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second, self._text = now, email.utils.formatdate(now, usegmt=True)
        return self._text


http_date = _HttpDate()


async def _resume(run: Coroutine[Any, Any, None], pending: Any) -> None:
    """Drive ``run``, started eagerly, from where it suspended on ``pending`` (what it awaited yielded)."""
    while True:
        if pending is None:  # a bare yield (asyncio.sleep(0)): one loop turn
            await asyncio.sleep(0)
        else:
            # What a Task does with a future its coroutine yielded: take over the wait (a future still
            # marked as awaited refuses a second await).
            pending._asyncio_future_blocking = False
            try:
                await pending
            except BaseException:  # noqa: BLE001 - ``run`` sees it when it resumes (Future.result())
                pass
        try:
            pending = run.send(None)
        except StopIteration:
            return


class Exchange(HTTPMessageDelegate):
    """One request on a lean route. Subclasses implement ``handle`` and ``error_body``."""

    route_label = "other"  # the route's name in the request metrics
    methods: tuple[str, ...] = ("POST",)

    def __init__(self, route: Route, connection: HTTPConnection) -> None:
        self.runtime = route.runtime
        self.stages = route.stages
        self.connection = connection
        self.consumer: VerifiedConsumer | None = None
        self.transport: TransportStage | None = None
        self.log_fields: dict[str, Any] = {}
        self.reject_reason: str | None = None
        self.correlation_id = ""
        self.client_ip = ""
        self.method = self.path = ""
        self.headers = HTTPHeaders()
        self._started = time.monotonic()
        self._chunks: list[bytes] = []
        self._reserved = 0
        self._admitted = False  # the headers passed: the body is being read
        self._answered = False
        self._nonce_pending = False  # verified, but the nonce is not in the database yet
        self._task: asyncio.Future[None] | None = None
        self.runtime.inflight.enter(id(self))  # left when answered or the connection drops (graceful stop)

    # -- Tornado's HTTPMessageDelegate --------------------------------------------------------------
    def headers_received(
        self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders
    ) -> None:
        assert isinstance(start_line, RequestStartLine)
        self.method, uri, self.headers = start_line.method, start_line.path, headers
        self.path = uri.partition("?")[0]
        self.correlation_id = incoming_request_id(headers) or next_correlation_id()
        settings = self.runtime.settings.endpoint
        peer = getattr(getattr(self.connection, "context", None), "remote_ip", "") or ""
        self.client_ip = client_address(peer, headers, settings.proxy_networks)
        try:
            self.connection.set_max_body_size(settings.max_body_size)  # type: ignore[attr-defined]
            length = check_framing(headers, settings.max_body_size)
            if self.method not in self.methods:
                raise MethodNotAllowed
            self.check_headers()
            admitted = admit(self.runtime, self.stages, self.method, uri, headers, length)
        except Exception as error:  # noqa: BLE001 - every refusal becomes an answer, unexpected ones a 500
            self.fail(error)
            return
        self.transport, self.consumer = admitted.transport, admitted.consumer
        self._reserved = admitted.reserved
        self._nonce_pending = self.consumer.nonce is not None
        self.log_fields.update(admitted.log_fields)
        self._admitted = True

    def data_received(self, chunk: bytes) -> None:
        if not self._answered:
            self._chunks.append(chunk)

    def finish(self) -> None:
        if self._answered:
            return
        body, self._chunks = b"".join(self._chunks), []
        # Started eagerly, as Python 3.12's eager tasks do: with SQLite the unit of work runs inline, so
        # most requests are answered before ``handle`` ever suspends -- no Task, no extra loop turn, and
        # Tornado need not watch the connection for a close while the answer is pending (an epoll_ctl
        # pair). Only a request that suspends (argon2, a database thread) continues in a Task.
        run = self._run(body)
        try:
            pending = run.send(None)
        except StopIteration:
            return
        self._task = asyncio.ensure_future(_resume(run, pending))  # referenced: a bare task may be collected

    def on_connection_close(self) -> None:
        self._done()

    # -- what a route implements -------------------------------------------------------------------
    def check_headers(self) -> None:
        """Route-specific checks on the headers, before the signature (override; raise ServiceError)."""

    async def handle(self, body: bytes) -> None:
        """Answer with ``respond`` (override); a ServiceError raised becomes the error answer."""
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"code": status, "message": message}

    # -- helpers for routes ------------------------------------------------------------------------
    def check_body(self, body: bytes) -> None:
        """Whatever the transport stage binds to the body (``oauth_body_hash``), once it arrived."""
        if self.transport is not None and self.consumer is not None:
            self.transport.check_body(self.consumer, body, self.headers.get("Content-Type", ""))

    def record_nonce(self) -> None:
        """First statement of the request's unit of work: the replay guard. :raise AuthenticationFailed:"""
        if not self._nonce_pending or self.consumer is None:
            return
        self._nonce_pending = False
        record_nonce(self.consumer)

    def respond(self, status: int, body: bytes, retry_after: float | None = None) -> None:
        """Write the whole answer, then the access line."""
        if self._answered:
            return
        self._answered = True
        headers = HTTPHeaders()
        headers["Content-Type"] = JSON
        headers["Content-Length"] = str(len(body))
        headers["Date"] = http_date()
        headers["Cache-Control"] = "no-store"
        headers["X-Correlation-Id"] = self.correlation_id
        if retry_after is not None:
            headers["Retry-After"] = str(max(1, round(retry_after)))
        if not self._admitted:
            # Answered on the headers: the connection closes rather than read a body nobody verified;
            # say so (a keep-alive client would otherwise send its next request into it).
            headers["Connection"] = "close"
        start_line = ResponseStartLine("", status, responses.get(status, "Unknown"))
        self.connection.write_headers(start_line, headers, body)
        self.connection.finish()
        write_access_line(
            self.runtime.metrics,
            self.route_label,
            self.method,
            self.path,
            status,
            time.monotonic() - self._started,
            self.correlation_id,
            self.client_ip,
            self.log_fields,
            self.reject_reason,
        )
        self._done()

    def fail(self, error: BaseException) -> None:
        """The answer for a refusal (ServiceError: its status and, below 500, its message), or a 500."""
        if isinstance(error, ServiceError):
            status = status_for(error)
            self.reject_reason = error.reason
            message = error.message if status < 500 else public_message(status)
            retry_after = error.retry_after
            if status == 429 and retry_after is None:
                retry_after = 1
        elif isinstance(error, MethodNotAllowed):
            status, message, retry_after = 405, public_message(405), None
            self.reject_reason = "HTTP 405"
        else:
            log.error(
                "unexpected error [correlation %s] on %s %s",
                self.correlation_id,
                self.method,
                self.path,
                exc_info=(type(error), error, error.__traceback__),
            )
            status, message, retry_after = 500, public_message(500), None
        self.respond(status, orjson.dumps(self.error_body(status, message)), retry_after)

    # -- internals ----------------------------------------------------------------------------------
    async def _run(self, body: bytes) -> None:
        try:
            await self.handle(body)
        except Exception as error:  # noqa: BLE001 - see fail()
            self.fail(error)

    def _done(self) -> None:
        if self._reserved:
            self.runtime.bodies.release(self._reserved)
            self._reserved = 0
        self._chunks = []
        self.runtime.inflight.leave(id(self))
        if self._nonce_pending:
            # Refused before its unit of work (or the client left): record the nonce all the same.
            self._nonce_pending = False
            assert self.consumer is not None
            record_nonce_late(self.runtime, self.consumer)
