"""BaseHandler: size limits, the transport-verification pipeline, domain-error mapping, error bodies.

Bodies are streamed (``stream_request_body``) so an oversized Content-Length is answered with a real
413 from ``prepare()`` before any byte of the body is read; a chunked body that grows past the limit
is cut off by Tornado itself (it answers a bare 400 and closes). Because the body is only complete
when the verb method runs, the verification pipeline runs at the start of the verb (``verified()``),
not in ``prepare()``.
"""

from __future__ import annotations

import logging
import re
import uuid
from types import TracebackType
from typing import Any

import tornado.web

from endpoint.auth.identity import VerifiedConsumer
from endpoint.auth.oauth import InboundRequest
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
)
from endpoint.runtime import Runtime
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
GENERIC_MESSAGES = {
    400: "Malformed request.",
    401: "Authentication failed.",
    403: "Not allowed for this organization.",
    404: "Not found.",
    405: "Method not allowed.",
    409: "Conflict.",
    413: "Request too large.",
    429: "Too many requests.",
    500: "Internal error.",
    503: "Service unavailable.",
}
MAX_AUTHORIZATION_BYTES = 8192
_DIGITS = re.compile(r"[0-9]{1,15}")


def status_for(error: ServiceError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_FOR:
            return STATUS_FOR[cls]  # type: ignore[index]
    return 500


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """Shared plumbing; subclasses implement verbs and ``error_body``."""

    runtime: Runtime

    def initialize(self, runtime: Runtime) -> None:
        self.runtime = runtime
        runtime.inflight.enter(id(self))  # left in on_finish / on_connection_close (graceful stop)
        self.consumer: VerifiedConsumer | None = None
        self.log_fields: dict[str, Any] = {}
        self.reject_reason: str | None = None
        self._chunks: list[bytes] = []
        self._received = 0

    def on_finish(self) -> None:
        self.runtime.inflight.leave(id(self))

    def on_connection_close(self) -> None:
        self.runtime.inflight.leave(id(self))
        super().on_connection_close()

    # -- limits -------------------------------------------------------------------------------
    def prepare(self) -> None:
        limit = self.runtime.settings.endpoint.max_body_size
        self.request.connection.set_max_body_size(limit)  # type: ignore[union-attr]
        length = self.request.headers.get("Content-Length")
        if length is not None:
            if not _DIGITS.fullmatch(length):  # str.isdigit() would accept "²" and int() then fail
                raise PayloadError(reason=f"malformed Content-Length {length[:20]!r}")
            if int(length) > limit:
                raise TooLarge(reason=f"Content-Length {length[:20]!r} over the {limit}-byte limit")
        if len(self.request.headers.get("Authorization", "")) > MAX_AUTHORIZATION_BYTES:
            raise PayloadError(reason="Authorization header over the size cap")

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received > self.runtime.settings.endpoint.max_body_size:
            raise TooLarge(reason="body over the limit")
        self._chunks.append(chunk)

    @property
    def body(self) -> bytes:
        return b"".join(self._chunks)

    def require_json_content_type(self) -> None:
        """:raise PayloadError: unless Content-Type is application/json (parameters allowed)."""
        media_type = self.request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            raise PayloadError(
                "Malformed request: Content-Type must be application/json.",
                reason=f"content type {media_type[:40]!r}",
            )

    # -- pipeline -----------------------------------------------------------------------------
    @property
    def client_ip(self) -> str:
        settings = self.runtime.settings.endpoint
        return client_address(self.request.remote_ip or "", self.request.headers, settings.proxy_networks)

    def inbound(self) -> InboundRequest:
        headers = {name: value for name, value in self.request.headers.get_all()}
        return InboundRequest(self.request.method or "", self.request.uri or "", headers, self.body)

    async def verified(self) -> VerifiedConsumer:
        """Run the transport stages (OAuth 1.0 today; the gateway JWT would be one more stage)."""
        request = self.inbound()
        for stage in self.runtime.transport_stages:
            self.consumer = await stage.verify(request)
        if self.consumer is None:
            raise AuthenticationFailed(reason="no transport stage configured")
        self.log_fields["principal"] = self.consumer.key
        return self.consumer

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
            message = GENERIC_MESSAGES.get(status_code, "Request failed.")
        if status_code == 429:
            retry_after = getattr(error, "retry_after", None) or 1
            self.set_header("Retry-After", str(max(1, round(retry_after))))
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(self.error_body(status_code, message))

    def error_body(self, status_code: int, message: str) -> dict[str, Any]:
        return {"code": status_code, "message": message}

    def set_default_headers(self) -> None:
        # Called from RequestHandler.__init__ (before initialize) and again on every clear().
        if not hasattr(self, "correlation_id"):
            self.correlation_id = uuid.uuid4().hex[:16]
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Correlation-Id", self.correlation_id)
        self.clear_header("Server")
