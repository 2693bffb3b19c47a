"""Token parsing (expires_on, then expires_in, then 2 h) and the single-flight cache."""

from __future__ import annotations

import json
import threading
import time

import pytest

from proxy.errors import AuthFailure
from proxy.tokens import AccessToken, TokenCache, parse_token, token_request_body

NOW = 1_700_000_000.0


def test_request_body_is_a_client_credentials_grant() -> None:
    assert token_request_body("client-1") == "grant_type=client_credentials"


@pytest.mark.parametrize(
    ("extra", "expires_at"),
    [
        ({"expires_on": NOW + 7200}, NOW + 7200),  # absolute, as Acronis sends it
        ({"expires_on": str(int(NOW) + 60), "expires_in": 9999}, NOW + 60),
        ({"expires_in": 3600}, NOW + 3600),  # RFC 6749 relative fallback
        ({}, NOW + 7200),  # neither: assume 2 h from issue
    ],
)
def test_expiry_fallbacks(extra: dict[str, object], expires_at: float) -> None:
    body = json.dumps({"access_token": "tok", "token_type": "bearer", **extra})
    token = parse_token("client-1", body, NOW, 7200)
    assert token.expires_at == expires_at and token.value == "tok"
    assert "tok" not in repr(token)


@pytest.mark.parametrize(
    "body",
    [
        '{"token_type": "bearer"}',
        '{"access_token": "t", "token_type": "mac"}',
        '{"error": "invalid_client"}',
        "",
    ],
)
def test_unusable_token_responses_are_auth_failures(body: str) -> None:
    with pytest.raises(AuthFailure) as info:
        parse_token("client-1", body, NOW, 7200)
    assert 't"' not in str(info.value)


def test_freshness_uses_the_margin_or_half_life_for_short_tokens() -> None:
    assert AccessToken("a", NOW + 7200, NOW).fresh(NOW + 6899, 300)
    assert not AccessToken("a", NOW + 7200, NOW).fresh(NOW + 6900, 300)
    short = AccessToken("a", NOW + 60, NOW)
    assert short.fresh(NOW + 29, 300) and not short.fresh(NOW + 30, 300)


def test_a_burst_of_callers_mints_one_token() -> None:
    calls: list[int] = []
    gate = threading.Event()

    def fetch() -> AccessToken:
        calls.append(1)
        gate.wait(1)
        return AccessToken(f"t{len(calls)}", time.time() + 7200, time.time())

    cache = TokenCache(fetch)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get())) for _ in range(16)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    gate.set()
    for t in threads:
        t.join()
    assert calls == [1] and set(results) == {"t1"} and cache.refreshes == 1


def test_invalidate_drops_only_the_rejected_token() -> None:
    tokens = iter(["t1", "t2", "t3"])
    cache = TokenCache(lambda: AccessToken(next(tokens), NOW + 7200, NOW), clock=lambda: NOW)
    assert cache.get() == "t1"
    cache.invalidate("stale-from-another-thread")
    assert cache.get() == "t1"
    cache.invalidate("t1")
    assert cache.get() == "t2"


def test_expired_token_is_refreshed_on_next_get() -> None:
    now = [NOW]
    tokens = iter(["t1", "t2"])
    cache = TokenCache(lambda: AccessToken(next(tokens), now[0] + 7200, now[0]), clock=lambda: now[0])
    assert cache.get() == "t1"
    now[0] += 7200 - 300
    assert cache.get() == "t2"
