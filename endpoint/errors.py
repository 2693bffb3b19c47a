"""Domain errors raised by services and verification stages; the web layer maps them to HTTP once."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every expected failure.

    ``message`` is safe to show to the caller; ``reason`` goes to the log only (never a secret either);
    ``retry_after`` (seconds), when known, is sent as Retry-After (429, 503).
    """

    default_message = "Request failed."

    def __init__(
        self, message: str | None = None, *, reason: str | None = None, retry_after: float | None = None
    ) -> None:
        self.message = message or self.default_message
        self.reason = reason or self.message
        self.retry_after = retry_after
        super().__init__(self.reason)


class PayloadError(ServiceError):
    """The request is malformed: bad JSON, schema violation, wrong content type (400)."""

    default_message = "Malformed request."


class AuthenticationFailed(ServiceError):
    """Transport signature or end-user credentials rejected (401); the client never learns which."""

    default_message = "Authentication failed."


class Forbidden(ServiceError):
    default_message = "Not allowed for this organization."


class NotFound(ServiceError):
    default_message = "Not found."


class Conflict(ServiceError):
    default_message = "Conflict."


class TooLarge(ServiceError):
    default_message = "Request too large."


class TooManyRequests(ServiceError):
    default_message = "Too many requests."


class Unavailable(ServiceError):
    default_message = "Service unavailable."
