"""The JWKS key store: what it takes from a JWKS, when it fetches, and that a failure never loses keys."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from endpoint.auth.jwks import MAX_KEYS, InvalidJwks, JwksKeyStore, parse_jwks
from proxy.errors import TransportError
from tests.support.gateway_tokens import jwks, kid_of, public_jwk, rsa_key


class Inline(Executor):
    """Runs each submitted fetch at once, on the caller's thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Source:
    """The identity provider: answers ``document``, or raises ``error`` when set; counts fetches."""

    def __init__(self, document: bytes | None = None) -> None:
        self.document = document if document is not None else jwks(public_jwk(0))
        self.error: Exception | None = None
        self.calls = 0

    def __call__(self) -> bytes:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.document


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def source() -> Source:
    return Source()


@pytest.fixture
def store(source: Source, clock: Clock) -> JwksKeyStore:
    return JwksKeyStore(source, 3600, clock=clock, wall_clock=lambda: 1_800_000_000.0, executor=Inline())


# -- parse_jwks --------------------------------------------------------------------------------------
def test_takes_the_rsa_signing_keys_as_acronis_publishes_them() -> None:
    keys, skipped = parse_jwks(jwks(public_jwk(0), public_jwk(1)))
    assert set(keys) == {kid_of(0), kid_of(1)} and skipped == 0
    assert keys[kid_of(0)].public_numbers() == rsa_key(0).public_key().public_numbers()


@pytest.mark.parametrize(
    "entry",
    [
        {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
        public_jwk(1, use="enc"),
        public_jwk(1, alg="RS512"),
        public_jwk(1, alg="HS256"),
        public_jwk(1, kid=""),
        public_jwk(1, kid=7),
        public_jwk(1, kid="k" * 300),
        public_jwk(1, kid="line\nbreak"),
        public_jwk(1, d="AQAB"),  # private material
        public_jwk(1, n="!!!"),
        public_jwk(1, n="A" * 2000),  # over 8192 bits
        "weak",  # a 1024-bit key
        public_jwk(1, kid=kid_of(0)),  # a second key under a kid already taken: the first stays
        "not an object",
    ],
    ids=lambda entry: str(entry)[:40],
)
def test_skips_what_is_not_an_rs256_verification_key(entry: Any) -> None:
    if entry == "weak":
        weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
        entry = {**public_jwk(0), **RSAAlgorithm.to_jwk(weak, as_dict=True), "kid": "weak"}
    keys, skipped = parse_jwks(jwks(public_jwk(0), entry))
    assert list(keys) == [kid_of(0)] and skipped == 1
    assert keys[kid_of(0)].public_numbers() == rsa_key(0).public_key().public_numbers()


def test_members_left_out_are_not_required() -> None:
    entry = {k: v for k, v in public_jwk(0).items() if k not in ("use", "alg")}
    assert list(parse_jwks(jwks(entry))[0]) == [kid_of(0)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>", "not a JSON document"),
        (b"\xff\xfe", "not a JSON document"),
        (b"[]", 'no "keys" list'),
        (b'{"keys": {}}', 'no "keys" list'),
        (jwks(*[public_jwk(0, kid=f"k{i}") for i in range(MAX_KEYS + 1)]), "keys listed"),
        (jwks(), "no RSA key"),
        (jwks(public_jwk(0, use="enc")), "no RSA key"),
    ],
)
def test_refuses_a_document_without_a_usable_key(body: bytes, message: str) -> None:
    with pytest.raises(InvalidJwks, match=message):
        parse_jwks(body)


# -- refresh: success, failure, never losing keys ---------------------------------------------------
def test_before_any_fetch_there_are_no_keys(store: JwksKeyStore) -> None:
    assert not store.ready and store.get(kid_of(0)) is None
    assert store.status() == {"state": "no keys", "keys": 0, "last_success": None, "last_error": None}


def test_a_fetch_installs_the_keys(store: JwksKeyStore) -> None:
    assert store.refresh() is True
    assert store.ready and store.get(kid_of(0)) is not None and store.get("other") is None
    assert store.status() == {
        "state": "ok",
        "keys": 1,
        "last_success": "2027-01-15T08:00:00+00:00",
        "last_error": None,
    }


@pytest.mark.parametrize(
    ("error", "category"),
    [(TransportError("JWKS acronis.cloud: ConnectionError"), "TransportError"), (None, "invalid JWKS")],
)
def test_a_failed_refresh_keeps_the_last_good_keys(
    store: JwksKeyStore,
    source: Source,
    caplog: pytest.LogCaptureFixture,
    error: Exception | None,
    category: str,
) -> None:
    store.refresh()
    if error is None:
        source.document = b'{"keys": []}'
    else:
        source.error = error
    caplog.set_level(logging.DEBUG, logger="endpoint.auth.jwks")
    assert store.refresh() is False and store.refresh() is False
    assert store.get(kid_of(0)) is not None
    assert store.status()["state"] == "stale" and store.status()["last_error"] == category
    assert store.status()["last_success"] is not None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per failure streak
    assert "still verifying with the 1 keys" in warnings[0].getMessage()
    source.error, source.document = None, jwks(public_jwk(0), public_jwk(1))
    assert store.refresh() is True
    assert store.status()["state"] == "ok" and store.status()["keys"] == 2
    assert "after 2 failed fetches" in caplog.records[-1].getMessage()


def test_a_failure_before_any_success_says_jwt_requests_wait(
    store: JwksKeyStore, source: Source, caplog: pytest.LogCaptureFixture
) -> None:
    source.error = TransportError("JWKS acronis.cloud: connect timed out")
    caplog.set_level(logging.WARNING, logger="endpoint.auth.jwks")
    assert store.refresh() is False
    assert store.status() == {
        "state": "no keys",
        "keys": 0,
        "last_success": None,
        "last_error": "TransportError",
    }
    [warning] = caplog.records
    assert "gateway tokens get 503" in warning.getMessage()


def test_a_rotation_replaces_the_whole_set(store: JwksKeyStore, source: Source) -> None:
    store.refresh()
    source.document = jwks(public_jwk(1))
    store.refresh()
    assert store.get(kid_of(0)) is None and store.get(kid_of(1)) is not None  # withdrawn keys stop verifying


# -- scheduling ----------------------------------------------------------------------------------
def test_start_fetches_once(store: JwksKeyStore, source: Source) -> None:
    assert store.refresh_soon() is True
    assert source.calls == 1 and store.ready


def test_an_unknown_kid_refetches_at_most_once_a_minute(
    store: JwksKeyStore, source: Source, clock: Clock
) -> None:
    store.refresh_soon()
    clock.now += 59
    assert store.request_refetch() is False and source.calls == 1
    clock.now += 1
    assert store.request_refetch() is True and source.calls == 2
    assert [store.request_refetch() for _ in range(100)].count(True) == 0 and source.calls == 2


def test_the_periodic_tick_refreshes_hourly_and_retries_a_failure_every_minute(
    store: JwksKeyStore, source: Source, clock: Clock
) -> None:
    assert store.tick_interval == 60
    store.refresh_if_due()  # never fetched: due
    assert source.calls == 1
    clock.now += 3599
    assert store.refresh_if_due() is False
    clock.now += 1
    source.error = TransportError("down")
    assert store.refresh_if_due() is True and source.calls == 2
    clock.now += 59
    assert store.refresh_if_due() is False
    clock.now += 1
    source.error = None
    assert store.refresh_if_due() is True and source.calls == 3 and store.status()["state"] == "ok"


def test_retry_after_counts_down_to_the_next_attempt(
    store: JwksKeyStore, source: Source, clock: Clock
) -> None:
    assert store.retry_after() == 1.0  # nothing tried yet
    source.error = TransportError("down")
    store.refresh_soon()
    clock.now += 20
    assert store.retry_after() == 40.0
    clock.now += 100
    assert store.retry_after() == 1.0


def test_one_fetch_at_a_time_on_the_store_thread(source: Source) -> None:
    release, entered = threading.Event(), threading.Event()
    threads: list[str] = []

    def slow() -> bytes:
        threads.append(threading.current_thread().name)
        entered.set()
        release.wait(5)
        return source()

    store = JwksKeyStore(slow, 3600)
    try:
        assert store.refresh_soon() is True
        assert entered.wait(5)
        assert threads[0].startswith("jwks")  # never the caller's (the IOLoop's) thread
        assert store.refresh_soon() is False and store.request_refetch() is False
        release.set()
        for _ in range(500):
            if store.ready:
                break
            threading.Event().wait(0.01)
        assert store.ready and source.calls == 1
    finally:
        release.set()
        store.close()


def test_an_unexpected_error_is_logged_and_the_next_tick_may_run(
    source: Source, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> bytes:
        raise KeyError("bug")

    store = JwksKeyStore(broken, 3600, clock=clock, executor=Inline())
    assert store.refresh_soon() is True
    assert "JWKS refresh failed unexpectedly" in caplog.text
    clock.now += 60
    assert store.refresh_if_due() is True  # not stuck "running"


def test_nothing_starts_after_close(store: JwksKeyStore, source: Source) -> None:
    store.close()
    assert store.refresh_soon() is False and store.request_refetch() is False and source.calls == 0


def test_status_is_json_and_free_of_urls(store: JwksKeyStore, source: Source) -> None:
    source.error = TransportError("JWKS https://user:pw@idp.internal/keys: ConnectionError")
    store.refresh()
    text = json.dumps(store.status())
    assert "idp.internal" not in text and "pw" not in text
