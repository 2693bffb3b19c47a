"""BaseHandler: size limits, the route's transport stage, the request's unit of work, error bodies.

Bodies are streamed (``stream_request_body``) so everything decided on the headers -- an oversized
Content-Length (413), a repeated credential header (400), the signature (401) -- is answered from
``prepare()`` before any byte of the body is read; a chunked body that grows past the limit is cut off
by Tornado itself (it answers a bare 400 and closes).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import tornado.web

from endpoint.auth.identity import VerifiedConsumer
from endpoint.auth.nonces import record_nonce
from endpoint.auth.stages import Stages, TransportStage
from endpoint.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    NotFound,
    PayloadError,
    ServiceError,
    TooLarge,
    TooManyRequests,
    Unavailable,
    public_message,
)
from endpoint.runtime import Runtime
from endpoint.web.admission import admit, check_framing, record_nonce_late, require_json_content_type
from endpoint.web.forwarding import client_address

log = logging.getLogger(__name__)

# The one place domain errors become HTTP statuses.
STATUS_FOR: dict[type[ServiceError], int] = {
    PayloadError: 400,
    AuthenticationFailed: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    TooManyRequests: 429,
    Unavailable: 503,
}
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}")
P = ParamSpec("P")
T = TypeVar("T")


_CORRELATION_BOOT = secrets.token_hex(3)  # differs per start; the pid tells forked workers apart
_correlation_counter = itertools.count()
_correlation_pid = [f"{os.getpid() & 0xFFFF:04x}"]  # getpid() is a system call: once per process
os.register_at_fork(after_in_child=lambda: _correlation_pid.__setitem__(0, f"{os.getpid() & 0xFFFF:04x}"))


def next_correlation_id() -> str:
    """A unique id per response, for matching a caller's report to our log line (not a secret).

    A counter, not uuid4: 16 random bytes per response cost a system call (~2 % of a request).
    """
    return f"{_CORRELATION_BOOT}{_correlation_pid[0]}{next(_correlation_counter) & 0xFFFFFF:06x}"


def incoming_request_id(headers: Mapping[str, str]) -> str | None:
    """The caller's (or the inbound proxy's) X-Request-Id / X-Correlation-Id, when it is a plain token of at
    most 64 characters: it becomes the correlation id of the log line and the answer, so one id follows a
    request through every hop. Anything else is ignored (a log field is no place for a caller's text)."""
    for name in ("X-Request-Id", "X-Correlation-Id"):
        value = headers.get(name)
        if value is not None and _REQUEST_ID.fullmatch(value):
            return value
    return None


def status_for(error: ServiceError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_FOR:
            return STATUS_FOR[cls]  # type: ignore[index]
    return 500


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """Shared plumbing; subclasses implement verbs and ``error_body``.

    ``prepare()`` runs on the headers alone: limits, then the route's transport stage. A request with a
    bad, stale, replayed or unknown signature is answered there, and its body is never read (Tornado reads
    a streamed body only after ``prepare()`` returns). A verified request then reserves its body's size
    from the process-wide BodyBudget before a byte of it is buffered.
    """

    runtime: Runtime
    route_label = "other"  # the route's name in the request metrics

    def initialize(self, runtime: Runtime, stages: Stages | None = None) -> None:
        self.runtime = runtime
        self.stages = stages
        runtime.inflight.enter(id(self))  # left in on_finish / on_connection_close (graceful stop)
        self.consumer: VerifiedConsumer | None = None
        self.transport: TransportStage | None = None
        self.log_fields: dict[str, Any] = {}
        self.reject_reason: str | None = None
        self._nonce_pending = False  # verified, but the nonce is not in the database yet
        self._chunks: list[bytes] = []
        self._received = 0
        self._reserved = 0
        self._prepared = False  # prepare() passed: the body (if any) is being read

    def on_finish(self) -> None:
        self._done()

    def on_connection_close(self) -> None:
        self._done()
        super().on_connection_close()

    def _done(self) -> None:
        self.runtime.inflight.leave(id(self))
        self.runtime.bodies.release(self._reserved)
        self._reserved = 0
        self._chunks = []
        if self._nonce_pending:
            # Refused before its unit of work: record the nonce all the same, so the same signed request
            # cannot be replayed to another process once whatever refused it (a throttle) has passed.
            self._nonce_pending = False
            assert self.consumer is not None
            record_nonce_late(self.runtime, self.consumer)

    # -- limits and transport, on the headers -------------------------------------------------------
    def prepare(self) -> None:
        limit = self.runtime.settings.endpoint.max_body_size
        self.request.connection.set_max_body_size(limit)  # type: ignore[union-attr]
        length = check_framing(self.request.headers, limit)
        verb = (self.request.method or "").lower()
        if getattr(type(self), verb, None) is getattr(tornado.web.RequestHandler, verb, None):
            # Route and method come first (acronis-callbacks.md §7): an undefined verb is 405, unsigned.
            raise tornado.web.HTTPError(405)
        self.check_request()
        if self.stages is None:
            self._prepared = True
            return
        method, uri = self.request.method or "", self.request.uri or ""
        admitted = admit(self.runtime, self.stages, method, uri, self.request.headers, length)
        self.transport, self.consumer = admitted.transport, admitted.consumer
        self._reserved = admitted.reserved
        self._nonce_pending = self.consumer.nonce is not None
        self.log_fields.update(admitted.log_fields)
        self._prepared = True

    def check_request(self) -> None:
        """Route-specific checks on the headers, before the signature (override; raise ServiceError)."""

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received > self.runtime.settings.endpoint.max_body_size:
            raise TooLarge(reason="body over the limit")
        self._chunks.append(chunk)

    def take_body(self) -> bytes:
        """The whole body, once, after the transport stage checked what it binds to it (body hash)."""
        body = b"".join(self._chunks)
        self._chunks = []
        if self.transport is not None and self.consumer is not None:
            content_type = self.request.headers.get("Content-Type", "")
            self.transport.check_body(self.consumer, body, content_type)
        return body

    def require_json_content_type(self) -> None:
        """:raise PayloadError: unless Content-Type is application/json (parameters allowed)."""
        require_json_content_type(self.request.headers)

    # -- the request's unit of work -----------------------------------------------------------------
    @property
    def client_ip(self) -> str:
        settings = self.runtime.settings.endpoint
        return client_address(self.request.remote_ip or "", self.request.headers, settings.proxy_networks)

    def record_nonce(self) -> None:
        """First statement of the request's unit of work (database thread or inline): the replay guard.

        :raise AuthenticationFailed: a replay (401).
        """
        if not self._nonce_pending or self.consumer is None:
            return
        try:
            record_nonce(self.consumer)
        except AuthenticationFailed:
            self._nonce_pending = False
            raise
        self._nonce_pending = False

    async def unit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn`` as the request's unit of work, after the nonce, in one database round."""

        def work() -> T:
            self.record_nonce()
            return fn(*args, **kwargs)

        return await self.runtime.db.run(work)

    # -- errors -------------------------------------------------------------------------------
    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        if exc_info and isinstance(exc_info[1], ServiceError):
            status_code = status_for(exc_info[1])
        super().send_error(status_code, **kwargs)

    def log_exception(
        self, typ: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(value, ServiceError):
            self.reject_reason = value.reason  # goes on the request's log line; no traceback
        elif isinstance(value, tornado.web.HTTPError):
            self.reject_reason = value.log_message or f"HTTP {value.status_code}"
        else:
            log.error(
                "unexpected error [correlation %s] on %s %s",
                self.correlation_id,
                self.request.method,
                self.request.path,
                exc_info=(typ, value, tb),
            )  # type: ignore[arg-type]

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        error = exc_info[1] if exc_info else None
        if isinstance(error, ServiceError) and status_code < 500:
            message = error.message
        else:
            message = public_message(status_code)
        retry_after = error.retry_after if isinstance(error, ServiceError) else None
        if status_code == 429 or retry_after is not None:
            self.set_header("Retry-After", str(max(1, round(retry_after or 1))))
        if not self._prepared:
            # Answered on the headers: Tornado closes the connection rather than read a body nobody
            # verified, so say so (a keep-alive client would otherwise send its next request into it).
            self.set_header("Connection", "close")
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(self.error_body(status_code, message))

    def error_body(self, status_code: int, message: str) -> dict[str, Any]:
        return {"code": status_code, "message": message}

    def set_default_headers(self) -> None:
        # Called from RequestHandler.__init__ (before initialize) and again on every clear().
        if not hasattr(self, "correlation_id"):
            self.correlation_id = incoming_request_id(self.request.headers) or next_correlation_id()
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Correlation-Id", self.correlation_id)
        self.clear_header("Server")
