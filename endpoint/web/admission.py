"""What every signed route decides on the headers alone, before a byte of the body is read.

Shared by the RequestHandler routes (``BaseHandler.prepare``) and the lean callback exchange
(``endpoint/web/exchange.py``), so both refuse the same requests in the same order: repeated singleton
headers and a bad or oversized Content-Length (400/413), then the route's own checks (method, content
type), then the transport stage (signature or token, 400/401), and last a reservation of the body's size
from the process-wide budget (503).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from tornado.httputil import HTTPHeaders

from endpoint.auth.identity import VerifiedConsumer
from endpoint.auth.nonces import record_nonce
from endpoint.auth.oauth import InboundRequest
from endpoint.auth.stages import SINGLETON_HEADERS, Stages, TransportStage, reject_repeated
from endpoint.errors import AuthenticationFailed, PayloadError, TooLarge
from endpoint.runtime import Runtime

log = logging.getLogger(__name__)

_DIGITS = re.compile(r"[0-9]{1,15}")


@dataclass(frozen=True, slots=True)
class Admission:
    """A request whose transport verified: who signed it, and the body bytes reserved for it."""

    transport: TransportStage
    consumer: VerifiedConsumer
    reserved: int

    @property
    def log_fields(self) -> dict[str, str]:
        """Who signed, for the access line: the principal and a gateway token's jti and aud (never the
        token itself)."""
        return {"principal": self.consumer.key, **dict(self.consumer.audit)}


def check_framing(headers: HTTPHeaders, limit: int) -> int | None:
    """Repeated credential headers and the declared body size; returns Content-Length (None: chunked).

    :raise PayloadError: a repeated singleton header, a malformed Content-Length (400).
    :raise TooLarge: a Content-Length over ``limit`` (413).
    """
    reject_repeated({name: headers.get_list(name) for name in SINGLETON_HEADERS})
    length = headers.get("Content-Length")
    if length is None:
        return None
    if not _DIGITS.fullmatch(length):  # str.isdigit() would accept "²" and int() then fail
        raise PayloadError(reason=f"malformed Content-Length {length[:20]!r}")
    if int(length) > limit:
        raise TooLarge(reason=f"Content-Length {length[:20]!r} over the {limit}-byte limit")
    return int(length)


def require_json_content_type(headers: Mapping[str, str]) -> None:
    """:raise PayloadError: unless Content-Type is application/json (parameters allowed)."""
    media_type = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise PayloadError(
            "Malformed request: Content-Type must be application/json.",
            reason=f"content type {media_type[:40]!r}",
        )


def admit(
    runtime: Runtime, stages: Stages, method: str, uri: str, headers: HTTPHeaders, length: int | None
) -> Admission:
    """The transport stage, then the body's reservation (a chunked body reserves the whole limit).

    :raise PayloadError: (400). :raise AuthenticationFailed: (401). :raise Unavailable: budget full (503).
    """
    transport, consumer = stages.verify_transport(InboundRequest(method, uri, headers))
    expected = length if length is not None else runtime.settings.endpoint.max_body_size
    return Admission(transport, consumer, runtime.bodies.reserve(expected) if expected else 0)


def record_nonce_late(runtime: Runtime, consumer: VerifiedConsumer) -> None:
    """For a verified request refused before its unit of work (a throttle, a bad body): record its nonce
    all the same, so the signed request cannot be replayed to another process once that refusal passed."""
    future = asyncio.ensure_future(runtime.db.run(_record_quietly, consumer))
    future.add_done_callback(_log_late_failure)


def _record_quietly(consumer: VerifiedConsumer) -> None:
    try:
        record_nonce(consumer)
    except AuthenticationFailed:
        pass  # already recorded: it was a replay, and that request was refused too


def _log_late_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        # Sampled (endpoint/observability/logsetup.py): during a database outage every refused request
        # ends up here.
        name = type(future.exception()).__name__
        log.warning(
            "could not record the nonce of a refused request: %s",
            name,
            extra={"rejection": f"nonce of a refused request not recorded ({name})"},
        )
