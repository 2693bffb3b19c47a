"""Domain errors and the one table of client-facing texts: what a caller reads, what only the log gets."""

from __future__ import annotations

import pytest

from endpoint.errors import (
    STATUS_TEXTS,
    PayloadError,
    ServiceError,
    TooManyRequests,
    error_name,
    public_message,
)
from endpoint.web.base import STATUS_FOR, status_for

# Every status the service answers with: the mapped error classes, a wrong verb, an unexpected failure.
ANSWERED = sorted({*STATUS_FOR.values(), 405, 500})


@pytest.mark.parametrize("status", ANSWERED)
def test_every_answered_status_has_its_own_texts(status: int) -> None:
    """A status missing from the table would answer with the bare fallback ("Request failed.", "Error")."""
    assert status in STATUS_TEXTS
    assert public_message(status) != public_message(599) and error_name(status) != error_name(599)


@pytest.mark.parametrize("cls", list(STATUS_FOR), ids=lambda c: c.__name__)
def test_an_error_without_a_message_reads_as_its_status(cls: type[ServiceError]) -> None:
    """The class's default text and the status the web layer gives it come from the same table row."""
    error = cls()
    assert error.message == public_message(status_for(error))
    assert error.reason == error.message == str(error)  # with neither given, the log shows the client text


def test_a_reason_goes_to_the_log_only() -> None:
    error = PayloadError(reason="consumer acme-123 unknown")
    assert error.message == public_message(400)  # the client still sees the generic text
    assert str(error) == error.reason == "consumer acme-123 unknown"  # what a traceback or log prints


def test_message_and_reason_are_independent() -> None:
    error = PayloadError("Bad payload.", reason="field x missing")
    assert (error.message, error.reason) == ("Bad payload.", "field x missing")
    assert PayloadError("Shown to the caller.").reason == "Shown to the caller."


def test_unmapped_statuses_fall_back_to_plain_texts() -> None:
    assert (public_message(418), error_name(418)) == ("Request failed.", "Error")
    assert ServiceError().message == "Request failed."


def test_too_many_requests_carries_retry_after() -> None:
    error = TooManyRequests(reason="identity throttled", retry_after=30.0)
    assert (error.message, error.reason) == ("Too many requests.", "identity throttled")
    assert error.retry_after == 30.0
