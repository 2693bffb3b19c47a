"""The outbound error family: one root, proxy failures that name the proxy and the cause."""

from __future__ import annotations

import pytest

from proxy import errors


@pytest.mark.parametrize(
    "cls",
    [
        errors.ConnectorConfigError,
        errors.ProxyFailure,
        errors.DirectEgressRefused,
        errors.TransportError,
        errors.TransportTimeout,
        errors.AuthFailure,
        errors.ApiError,
        errors.ApiRejected,
        errors.ApiUnavailable,
        errors.Interrupted,
    ],
)
def test_every_outbound_error_is_a_connector_error(cls: type[Exception]) -> None:
    assert issubclass(cls, errors.ConnectorError)


def test_proxy_failure_names_proxy_and_cause() -> None:
    failure = errors.ProxyFailure("http://proxy.internal:3128", "connection to the proxy refused")
    assert str(failure) == "outbound proxy http://proxy.internal:3128: connection to the proxy refused"
    assert (failure.proxy, failure.cause) == ("http://proxy.internal:3128", "connection to the proxy refused")


def test_api_errors_carry_status_body_and_retry_after() -> None:
    error = errors.ApiUnavailable("alert: 429", status=429, body="slow down", retry_after=3.0)
    assert (error.status, error.body, error.retry_after) == (429, "slow down", 3.0)
    assert isinstance(errors.ApiRejected("x", status=400), errors.ApiError)
