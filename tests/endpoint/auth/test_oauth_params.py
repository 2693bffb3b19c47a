"""Strict OAuth 1.0 protocol-parameter checks: header parsing, freshness, and the query string."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from endpoint.auth.oauth_params import (
    OAuthParameters,
    check_freshness,
    parse_authorization,
    reject_oauth_query_parameters,
)
from endpoint.errors import AuthenticationFailed, PayloadError

METHODS = ("HMAC-SHA1", "HMAC-SHA256")
KEY = "acme-3f9c0e7d2b6a4c1e8d5f7a9b0c2e4d6f"
KEY_128 = ("A-9" * 43)[:128]  # the longest key the format allows
NONCE_128 = ("Nb+/=~ .-_" * 13)[:128]  # the longest nonce: any printable ASCII (RFC 5849 §3.3)
GOOD = {
    "oauth_consumer_key": KEY,
    "oauth_signature": "wOJIO9A2W5mFwDgiDvZbTSMK%2FPY%3D",
    "oauth_signature_method": "HMAC-SHA1",
    "oauth_timestamp": "1700000000",
    "oauth_nonce": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "oauth_version": "1.0",
}


def header(params: dict[str, str] | list[tuple[str, str]], scheme: str = "OAuth") -> str:
    items = params.items() if isinstance(params, dict) else params
    return scheme + " " + ", ".join(f'{name}="{value}"' for name, value in items)


def replaced(**changes: str | None) -> dict[str, str]:
    params = {**GOOD, **changes}
    return {name: value for name, value in params.items() if value is not None}


def test_good_header() -> None:
    assert parse_authorization(header(GOOD), METHODS) == OAuthParameters(
        consumer_key=KEY,
        nonce=GOOD["oauth_nonce"],
        timestamp=1700000000,
        signature_method="HMAC-SHA1",
        body_hash=None,
        signature="wOJIO9A2W5mFwDgiDvZbTSMK/PY=",
        signed_pairs=tuple((k, v) for k, v in GOOD.items() if k != "oauth_signature"),
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (header(replaced(oauth_version=None)), {}),
        (header({"realm": "https://connector.example.com/", **GOOD}), {}),
        (
            header(replaced(oauth_body_hash="2jmj7l5rSw0yVb%2FvlWAYkK%2FYBwk%3D")),
            {"body_hash": "2jmj7l5rSw0yVb/vlWAYkK/YBwk="},
        ),
        (header(replaced(oauth_consumer_key="acme%2Dkey%2D1234")), {"consumer_key": "acme-key-1234"}),
        (header(replaced(oauth_signature_method="HMAC-SHA256")), {"signature_method": "HMAC-SHA256"}),
        (header(replaced(oauth_consumer_key="a" * 8)), {"consumer_key": "a" * 8}),
        (header(replaced(oauth_consumer_key=KEY_128)), {"consumer_key": KEY_128}),
        (header(replaced(oauth_nonce="n")), {"nonce": "n"}),
        (header(replaced(oauth_nonce="abc123")), {"nonce": "abc123"}),
        (header(replaced(oauth_nonce=quote(NONCE_128, safe=""))), {"nonce": NONCE_128}),
        # dghubble/oauth1 (Go) sends base64 of 32 random bytes, percent-encoded in the header.
        (header(replaced(oauth_nonce="q%2BZ3x%2Fw9Lk0%3D")), {"nonce": "q+Z3x/w9Lk0="}),
        (header(replaced(oauth_nonce="nonce.with.dots")), {"nonce": "nonce.with.dots"}),
        (header(GOOD, scheme="oauth"), {}),
        (header(GOOD).replace(", ", ",\t "), {}),
        (header(GOOD) + ",", {}),  # a trailing separator, as urllib's list parser always allowed
    ],
    ids=[
        "no-version",
        "realm",
        "body-hash-decoded",
        "percent-decoded",
        "sha256",
        "key-8",
        "key-128",
        "nonce-1",
        "nonce-6",
        "nonce-128",
        "nonce-base64",
        "nonce-dots",
        "scheme-case",
        "whitespace",
        "trailing-comma",
    ],
)
def test_accepted_variants(value: str, expected: dict[str, str]) -> None:
    parsed = parse_authorization(value, METHODS)
    for name, wanted in expected.items():
        assert getattr(parsed, name) == wanted


REQUIRED = list(GOOD)[:5]
MALFORMED = [
    *[(header(replaced(**{name: None})), f"missing OAuth parameter {name}") for name in REQUIRED],
    *[(header(replaced(**{name: ""})), f"missing OAuth parameter {name}") for name in REQUIRED],
    (header([*GOOD.items(), ("oauth_nonce", "another-nonce-1")]), "duplicated OAuth parameter oauth_nonce"),
    (header([*GOOD.items(), ("oauth_nonce", GOOD["oauth_nonce"])]), "duplicated OAuth parameter oauth_nonce"),
    (header([("realm", "a"), ("realm", "b"), *GOOD.items()]), "duplicated OAuth parameter realm"),
    (header(replaced(oauth_callback="oob")), "unsupported OAuth parameter oauth_callback"),
    (header(replaced(foo="bar")), "unsupported OAuth parameter foo"),
    (header(replaced(OAUTH_NONCE="x" * 10)), "unsupported OAuth parameter OAUTH_NONCE"),
    (header(replaced(oauth_version="2.0")), "oauth_version is not 1.0"),
    (header(replaced(oauth_version="1")), "oauth_version is not 1.0"),
    (header(replaced(oauth_signature_method="PLAINTEXT")), "not allowed"),
    (header(replaced(oauth_signature_method="RSA-SHA1")), "not allowed"),
    (header(replaced(oauth_signature_method="hmac-sha1")), "not allowed"),
    (header(replaced(oauth_consumer_key="a" * 7)), "malformed consumer key"),
    (header(replaced(oauth_consumer_key="a" * 129)), "malformed consumer key"),
    (header(replaced(oauth_consumer_key="acme_key_1234")), "malformed consumer key"),
    (header(replaced(oauth_consumer_key="acme%20key%201234")), "malformed consumer key"),
    (header(replaced(oauth_nonce="n" * 129)), "malformed nonce"),
    (header(replaced(oauth_nonce="tab%09inside")), "malformed nonce"),
    (header(replaced(oauth_nonce="caf%C3%A9")), "malformed nonce"),
    (header(replaced(oauth_timestamp="170000000")), "malformed timestamp"),
    (header(replaced(oauth_timestamp="17000000000")), "malformed timestamp"),
    (header(replaced(oauth_timestamp="-170000000")), "malformed timestamp"),
    (header(replaced(oauth_timestamp="1700000000.5")), "malformed timestamp"),
    (header(GOOD).replace('oauth_nonce="', "oauth_nonce=").replace('f0"', "f0"), "malformed OAuth parameter"),
    (header(GOOD) + ', oauth_x="unterminated', "malformed OAuth parameter"),
    (header(GOOD).replace(", ", ", , ", 1), "malformed OAuth parameter"),  # an empty item
    (header(GOOD).replace(", ", " junk, ", 1), "malformed OAuth parameter"),  # a token between items
    (header(GOOD).replace(", ", " ", 1), "malformed OAuth parameter"),  # no separator
    (header(GOOD).replace('f0"', 'f0"x"', 1), "malformed OAuth parameter"),  # an embedded quote
    (header(GOOD) + ", ", "malformed OAuth parameter"),  # a separator, then nothing but blanks
    ("OAuth", "missing OAuth parameter oauth_consumer_key"),
]


@pytest.mark.parametrize(("value", "reason"), MALFORMED, ids=[reason for _, reason in MALFORMED])
def test_malformed_headers_are_payload_errors(value: str, reason: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_authorization(value, METHODS)
    assert reason in info.value.reason


def test_a_method_outside_the_allowed_set_is_refused() -> None:
    value = header(replaced(oauth_signature_method="HMAC-SHA256"))
    with pytest.raises(PayloadError, match="not allowed"):
        parse_authorization(value, ("HMAC-SHA1",))


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "Basic dXNlcjpwYXNz",
        "Bearer abc",
        "OAuthx " + header(GOOD)[6:],
        header(replaced(oauth_token="tok")),
    ],
)
def test_not_our_scheme_or_an_access_token_is_an_authentication_failure(value: str | None) -> None:
    with pytest.raises(AuthenticationFailed):
        parse_authorization(value, METHODS)


# -- check_freshness -------------------------------------------------------------------------------
NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("timestamp", "fresh"),
    [
        (int(NOW), True),
        (int(NOW) - 300, True),
        (int(NOW) + 300, True),
        (int(NOW) - 301, False),
        (int(NOW) + 301, False),
        (0, False),
    ],
)
def test_check_freshness_window_is_symmetric_and_inclusive(timestamp: int, fresh: bool) -> None:
    if fresh:
        check_freshness(timestamp, 300, now=NOW)
    else:
        with pytest.raises(AuthenticationFailed, match="outside the 300s window"):
            check_freshness(timestamp, 300, now=NOW)


def test_check_freshness_defaults_to_the_clock() -> None:
    check_freshness(int(time.time()), 5)
    with pytest.raises(AuthenticationFailed):
        check_freshness(int(time.time()) - 60, 5)


# -- reject_oauth_query_parameters -----------------------------------------------------------------
@pytest.mark.parametrize(
    "uri",
    ["/callback", "/callback?", "/callback?a=1&b=2", "/callback?next=oauth_nonce", "/callback?x_oauth_y=1"],
)
def test_queries_without_oauth_parameters_pass(uri: str) -> None:
    reject_oauth_query_parameters(uri)


@pytest.mark.parametrize(
    "uri", ["/callback?oauth_nonce=x", "/callback?a=1&oauth_signature=abc", "/callback?oauth_token"]
)
def test_oauth_parameters_in_the_query_are_refused(uri: str) -> None:
    with pytest.raises(PayloadError, match="query string"):
        reject_oauth_query_parameters(uri)


@pytest.mark.parametrize("uri", ["/callback?%6Fauth_nonce=x", "/callback?oauth%5Fnonce=x"])
def test_percent_encoded_oauth_parameters_in_the_query_are_refused(uri: str) -> None:
    with pytest.raises(PayloadError):
        reject_oauth_query_parameters(uri)
