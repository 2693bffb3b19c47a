"""The retry policy under the outbound session: idempotent statuses only, capped Retry-After, and no
verbatim resend of a signed request."""

from __future__ import annotations

from proxy.retry import make_retry
from proxy.session import ProxySettings


def test_retry_policy_spares_post_and_caps_retry_after() -> None:
    retry = make_retry(ProxySettings(retries=3, retry_after_max=60))
    assert "POST" not in retry.allowed_methods and "GET" in retry.allowed_methods
    assert retry.is_retry("GET", 503) and not retry.is_retry("POST", 503)
    assert retry.is_retry("GET", 429) and not retry.is_retry("GET", 500)
    assert retry.parse_retry_after("999999") == 60
    assert retry.new(total=1).parse_retry_after("999999") == 60  # the cap survives each increment
    assert retry.other == 0 and retry.raise_on_status is False


def test_a_signed_session_retries_only_what_never_left() -> None:
    retry = make_retry(ProxySettings(retries=3), signed=True)
    assert retry.connect == 3 and retry.read == 0 and retry.status == 0
