"""Domain errors: the client-safe message, the log-only reason, and TooManyRequests.retry_after."""

from __future__ import annotations

import pytest

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

DEFAULT_MESSAGES = [
    (ServiceError, "Request failed."),
    (PayloadError, "Malformed request."),
    (AuthenticationFailed, "Authentication failed."),
    (Forbidden, "Not allowed for this organization."),
    (NotFound, "Not found."),
    (Conflict, "Conflict."),
    (TooLarge, "Request too large."),
    (TooManyRequests, "Too many requests."),
    (Unavailable, "Service unavailable."),
]


@pytest.mark.parametrize(("cls", "message"), DEFAULT_MESSAGES, ids=lambda v: getattr(v, "__name__", ""))
def test_each_class_has_its_own_client_message(cls: type[ServiceError], message: str) -> None:
    error = cls()
    assert isinstance(error, ServiceError)
    assert error.message == message
    assert error.reason == message  # with neither given, the log shows the client message
    assert str(error) == message


@pytest.mark.parametrize("cls", [cls for cls, _ in DEFAULT_MESSAGES], ids=lambda c: c.__name__)
def test_reason_defaults_to_the_message(cls: type[ServiceError]) -> None:
    error = cls("Shown to the caller.")
    assert (error.message, error.reason, str(error)) == ("Shown to the caller.",) * 3


@pytest.mark.parametrize("cls", [cls for cls, _ in DEFAULT_MESSAGES], ids=lambda c: c.__name__)
def test_a_reason_goes_to_the_log_only(cls: type[ServiceError]) -> None:
    error = cls(reason="consumer acme-123 unknown")
    assert error.message == cls.default_message  # the client still sees the generic text
    assert error.reason == "consumer acme-123 unknown"
    assert str(error) == "consumer acme-123 unknown"  # what a traceback or log would print


def test_message_and_reason_are_independent() -> None:
    error = PayloadError("Bad payload.", reason="field x missing")
    assert (error.message, error.reason) == ("Bad payload.", "field x missing")


@pytest.mark.parametrize("retry_after", [None, 0.5, 30.0])
def test_too_many_requests_carries_retry_after(retry_after: float | None) -> None:
    error = TooManyRequests(reason="identity throttled", retry_after=retry_after)
    assert error.retry_after == retry_after
    assert (error.message, error.reason) == ("Too many requests.", "identity throttled")


def test_retry_after_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        TooManyRequests("msg", "reason", 3.0)  # type: ignore[misc]
