"""Decoding of X-CyberApp-Auth and X-CyberApp-Extra (catalogue items 30, 31, 45, 46)."""

from __future__ import annotations

import base64
import json

import pytest

from endpoint.auth.credentials import EXTRA_MESSAGE, Credentials, decode_auth_header, decode_extra_header
from endpoint.errors import AuthenticationFailed, PayloadError
from tests.support.builders import cyberapp_auth

CAP = 8192


def b64(raw: bytes) -> str:
    """A header value as Tornado hands it over: the wire bytes decoded as latin-1."""
    return base64.b64encode(raw).decode("latin-1")


def test_decodes_identity_and_password() -> None:
    assert decode_auth_header(cyberapp_auth("jdoe", "s3cret"), CAP) == Credentials("jdoe", "s3cret")


def test_splits_at_the_first_colon_and_ignores_other_secret_fields() -> None:
    value = b64(b'jdoe:{"password": "a:b:c", "otp": "123"}')
    assert decode_auth_header(value, CAP) == Credentials("jdoe", "a:b:c")


def test_non_ascii_password_round_trips_through_latin1() -> None:
    password = "pässwörd-€-日本-🔑"
    wire = cyberapp_auth("Jörg", password).encode("ascii")  # what goes over the wire
    assert decode_auth_header(wire.decode("latin-1"), CAP) == Credentials("Jörg", password)


def test_password_may_contain_nul_and_json_escapes() -> None:
    value = b64(("jdoe:" + json.dumps({"password": "a\x00b\n"})).encode())
    assert decode_auth_header(value, CAP).password == "a\x00b\n"


def test_repr_never_shows_the_password() -> None:
    credentials = decode_auth_header(cyberapp_auth("jdoe", "hunter2-secret"), CAP)
    assert "hunter2-secret" not in repr(credentials)
    assert "hunter2-secret" not in str(credentials)
    assert "jdoe" in repr(credentials)


PADDED = b64(b'jdoe:{"password":"xy"}')  # ends in "=="
MALFORMED_AUTH = [
    pytest.param(None, "missing", id="absent"),
    pytest.param("", "missing", id="empty"),
    pytest.param("not base64!", "outside the alphabet", id="not-base64"),
    pytest.param(PADDED.rstrip("="), "bad padding", id="missing-padding"),
    pytest.param(PADDED + "=", "bad padding", id="excess-padding"),
    pytest.param(PADDED + "YQ==", "bad padding", id="data-after-padding"),
    pytest.param("=" + PADDED[:-1], "bad padding", id="leading-padding"),
    pytest.param("YR==", "canonical", id="non-canonical-bits"),
    pytest.param("-" + PADDED[1:], "outside the alphabet", id="urlsafe-minus"),
    pytest.param("_" + PADDED[1:], "outside the alphabet", id="urlsafe-underscore"),
    pytest.param(
        b64(b'jdoe:{"password":"xyz"}')[:8] + " " + b64(b'jdoe:{"password":"xyz"}')[8:],
        "outside the alphabet",
        id="inner-space",
    ),
    pytest.param(b64(b'jdoe:{"password":"x"}') + "\r\n", "outside the alphabet", id="raw-crlf"),
    pytest.param(b64(b'jdoe:{"password":"x"}') + "\x00", "outside the alphabet", id="raw-nul"),
    pytest.param("\xe9" + b64(b'jdoe:{"password":"x"}'), "outside the alphabet", id="raw-latin1"),
    pytest.param("\u0100AAA", "latin-1", id="not-latin1"),
    pytest.param(b64('jdoe:{"password":"é"}'.encode("latin-1")), "not UTF-8", id="non-utf8"),
    pytest.param(b64(b"jdoe"), "no ':'", id="no-colon"),
    pytest.param(b64(b':{"password":"x"}'), "empty identity", id="empty-identity"),
    pytest.param(b64(b'jd\roe:{"password":"x"}'), "control characters", id="cr-in-identity"),
    pytest.param(b64(b'jd\noe:{"password":"x"}'), "control characters", id="lf-in-identity"),
    pytest.param(b64(b'jd\x00oe:{"password":"x"}'), "control characters", id="nul-in-identity"),
    pytest.param(b64('jd\u2028oe:{"password":"x"}'.encode()), "control characters", id="ls-in-identity"),
    pytest.param(b64(b"jdoe:s3cret"), "is not valid JSON", id="right-not-json"),
    pytest.param(b64(b"jdoe:"), "is not valid JSON", id="right-empty"),
    pytest.param(b64(b'jdoe:["s3cret"]'), "not a JSON object", id="right-array"),
    pytest.param(b64(b'jdoe:"s3cret"'), "not a JSON object", id="right-string"),
    pytest.param(b64(b'jdoe:{"password":"x"} trailing'), "is not valid JSON", id="trailing-garbage"),
    pytest.param(b64(b'jdoe:{"secret":"x"}'), "password missing", id="password-missing"),
    pytest.param(b64(b'jdoe:{"password":123}'), "not a string", id="password-number"),
    pytest.param(b64(b'jdoe:{"password":null}'), "not a string", id="password-null"),
    pytest.param(b64(b'jdoe:{"password":["x"]}'), "not a string", id="password-list"),
    pytest.param(b64(b'jdoe:{"password":""}'), "empty password", id="password-empty"),
    pytest.param(b64(b'jdoe:{"password":"\\ud800"}'), "invalid Unicode escape", id="lone-surrogate"),
    pytest.param(b64(b'jdoe:{"password":"a","password":"b"}'), "duplicate", id="duplicate-keys"),
    pytest.param(b64(b'jdoe:{"password":"x","n":NaN}'), "NaN or Infinity", id="nan"),
    pytest.param(b64(b"jdoe:" + b"[" * 5000 + b"]" * 5000), "nests deeper than", id="deep-nesting"),
]


@pytest.mark.parametrize(("value", "reason"), MALFORMED_AUTH)
def test_malformed_auth_header_is_401_with_a_specific_reason(value: str | None, reason: str) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        decode_auth_header(value, 16384)
    assert info.value.message == "Authentication failed."  # the client never learns which rule failed
    assert reason in info.value.reason
    # No decoder exception chained: its text could quote the input.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_header_over_the_cap_is_401_before_decoding() -> None:
    value = cyberapp_auth("jdoe", "x" * 64 * 1024)
    with pytest.raises(AuthenticationFailed, match="longer than 8192 bytes"):
        decode_auth_header(value, CAP)
    exact = cyberapp_auth("jdoe", "x" * 100)
    assert decode_auth_header(exact, len(exact)).password == "x" * 100


def test_reason_never_contains_the_header_or_password() -> None:
    password = "Tr0ub4dor&3-unique"
    for raw in (b"jdoe:" + password.encode(), b'jdoe:{"pw":"' + password.encode() + b'"}'):
        value = b64(raw)
        with pytest.raises(AuthenticationFailed) as info:
            decode_auth_header(value, CAP)
        text = f"{info.value} {info.value.reason} {info.value.message} {info.value!r}"
        assert password not in text and value not in text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, {}),
        ("e30=", {}),
        (b64(b'{"region": "eu", "n": 1}'), {"region": "eu", "n": 1}),
        (b64('{"name": "Jörg"}'.encode()), {"name": "Jörg"}),
    ],
)
def test_extra_header_accepted(value: str | None, expected: dict[str, object]) -> None:
    assert decode_extra_header(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("", "is not valid JSON", id="empty"),
        pytest.param("{}", "outside the alphabet", id="raw-json"),
        pytest.param("e30", "bad padding", id="bad-padding"),
        pytest.param("e31=", "canonical", id="non-canonical"),
        pytest.param(b64(b"[]"), "not a JSON object", id="array"),
        pytest.param(b64(b"null"), "not a JSON object", id="null"),
        pytest.param(b64(b"not json"), "is not valid JSON", id="not-json"),
        pytest.param(b64(b'{"a": 1, "a": 2}'), "duplicate", id="duplicate-keys"),
        pytest.param(b64(b"\xff\xfe{}"), "not UTF-8", id="non-utf8"),
    ],
)
def test_malformed_extra_header_is_400(value: str, reason: str) -> None:
    with pytest.raises(PayloadError) as info:
        decode_extra_header(value)
    assert info.value.message == EXTRA_MESSAGE
    assert reason in info.value.reason
