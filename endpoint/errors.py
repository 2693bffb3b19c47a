"""Domain errors raised by services and verification stages, and the client-facing text of every status.

The web layer maps an error to its HTTP status once (``STATUS_FOR`` in endpoint/web/base.py); what the client
then reads comes from ``STATUS_TEXTS`` here: the message when the error brings none (always from 500 on,
whose details stay in the log) and, in an APS error body, the error name.
"""

from __future__ import annotations

# The one table of client-facing texts: HTTP status -> (message, APS error name).
STATUS_TEXTS: dict[int, tuple[str, str]] = {
    400: ("Malformed request.", "BadRequest"),
    401: ("Authentication failed.", "Unauthorized"),
    403: ("Not allowed for this organization.", "Forbidden"),
    404: ("Not found.", "NotFound"),
    405: ("Method not allowed.", "MethodNotAllowed"),
    409: ("Conflict.", "Conflict"),
    413: ("Request too large.", "RequestEntityTooLarge"),
    429: ("Too many requests.", "TooManyRequests"),
    500: ("Internal error.", "InternalError"),
    503: ("Service unavailable.", "ServiceUnavailable"),
}
_UNLISTED = ("Request failed.", "Error")


def public_message(status: int) -> str:
    """The generic text a client gets for ``status`` (an error's own message replaces it below 500)."""
    return STATUS_TEXTS.get(status, _UNLISTED)[0]


def error_name(status: int) -> str:
    """The ``error`` of an APS error body for ``status``."""
    return STATUS_TEXTS.get(status, _UNLISTED)[1]


class ServiceError(Exception):
    """Base of every expected failure.

    ``message`` is safe to show to the caller; ``reason`` goes to the log only (never a secret either);
    ``retry_after`` (seconds), when known, is sent as Retry-After (429, 503).
    """

    default_message = _UNLISTED[0]

    def __init__(
        self, message: str | None = None, *, reason: str | None = None, retry_after: float | None = None
    ) -> None:
        self.message = message or self.default_message
        self.reason = reason or self.message
        self.retry_after = retry_after
        super().__init__(self.reason)


class PayloadError(ServiceError):
    """The request is malformed: bad JSON, schema violation, wrong content type (400)."""

    default_message = public_message(400)


class AuthenticationFailed(ServiceError):
    """Transport signature or end-user credentials rejected (401); the client never learns which."""

    default_message = public_message(401)


class Forbidden(ServiceError):
    default_message = public_message(403)


class NotFound(ServiceError):
    default_message = public_message(404)


class Conflict(ServiceError):
    default_message = public_message(409)


class TooLarge(ServiceError):
    default_message = public_message(413)


class TooManyRequests(ServiceError):
    default_message = public_message(429)


class Unavailable(ServiceError):
    default_message = public_message(503)
