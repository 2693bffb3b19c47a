"""parse_callback_request: strict JSON (security-checklist item 27), the envelope schema, request_id echo."""

from __future__ import annotations

import json
from typing import Any

import pytest

from endpoint.callbacks.envelope import MAX_DEPTH, Envelope, MalformedCallback, parse_callback_request
from endpoint.errors import PayloadError
from endpoint.parsing import strict_json
from tests.support.callback_builders import (
    ENDPOINT_ID,
    POSTMAN_PARTNER,
    POSTMAN_PARTNER_TENANT,
    body,
    context,
)

REQUEST_ID = "7f1c2d9e-5b7a-4a61-9a8e-3c2b1d0e9f11"


def encode(document: Any) -> bytes:
    return json.dumps(document).encode("utf-8")


def rejected(raw: bytes) -> MalformedCallback:
    with pytest.raises(PayloadError) as info:
        parse_callback_request(raw)
    assert type(info.value) is MalformedCallback  # never a bare ValueError, RecursionError or KeyError
    return info.value


def test_docs_example_parses_into_an_envelope() -> None:
    env = parse_callback_request(encode(body()))
    assert env == Envelope(
        type="cti.a.p.acgw.request.v1.0~a.p.enablement.write.v1.0",
        request_id=REQUEST_ID,
        created_at="2023-04-10T15:33:01+00:00",
        callback_id="cti.a.p.acgw.callback.v1.0~a.p.enablement.write.v1.0",
        endpoint_id=ENDPOINT_ID,
        tenant_id=POSTMAN_PARTNER_TENANT,
        datacenter_url="https://eu8-cloud.acronis.com",
        payload={"vendor_tenant_id": POSTMAN_PARTNER, "acronis_tenant_id": POSTMAN_PARTNER_TENANT},
    )
    with pytest.raises(AttributeError):
        env.request_id = "x"  # type: ignore[misc]


def test_absent_payload_is_empty_and_datacenter_optional() -> None:
    document = body(context=context(datacenter_url=None))
    del document["payload"]
    env = parse_callback_request(encode(document))
    assert env.payload == {} and env.datacenter_url is None


@pytest.mark.parametrize(
    "created_at", ["0001-01-01T00:00:00Z", "2023-04-10t15:33:01.123456z", "2016-12-31T23:59:60+01:00"]
)
def test_rfc3339_created_at_forms_are_accepted(created_at: str) -> None:
    assert parse_callback_request(encode(body(created_at=created_at))).created_at == created_at


@pytest.mark.parametrize(
    ("created_at", "skew"),
    [
        ("2023-04-10T15:33:01+00:00", 100.0),
        ("2023-04-10T17:33:01.5+02:00", 100.0 - 0.5),
        ("2023-04-10t15:34:41z", 0.0),
        ("2023-04-10T15:36:21Z", -100.0),  # from the future
        ("0001-01-01T00:00:00Z", None),  # the zero time of the mirroring examples: not given
        ("0001-01-01T00:00:00+01:00", None),
        ("2016-12-31T23:59:60Z", None),  # a leap second: valid, but not a Python datetime
    ],
)
def test_created_at_skew_is_for_the_log_and_the_zero_time_has_none(
    created_at: str, skew: float | None
) -> None:
    now = 1681140781.0 + 100  # 2023-04-10T15:34:41Z
    env = parse_callback_request(encode(body(created_at=created_at)))
    assert env.created_at_skew(now) == skew


def test_tenant_and_datacenter_are_normalized() -> None:
    ctx = context(
        tenant_id=POSTMAN_PARTNER_TENANT.upper(), datacenter_url="https://EU8-Cloud.acronis.com:443/"
    )
    env = parse_callback_request(encode(body(context=ctx)))
    assert env.tenant_id == POSTMAN_PARTNER_TENANT
    assert env.datacenter_url == "https://eu8-cloud.acronis.com"


DEEP_ARRAY = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
VALID = encode(body())


def with_context_field(raw_value: bytes) -> bytes:
    """A valid body whose context carries one extra field with ``raw_value`` spliced in verbatim."""
    return VALID.replace(b'"context": {', b'"context": {"x": ' + raw_value + b", ", 1)


HTTPS_ONLY = (
    "Malformed request: context.datacenter_url must be an https:// URL"
    " without credentials, query or fragment."
)
NOT_JSON = "the body is not valid JSON"
NUMBER = "oversized number"
NOT_OBJECT = "must be a JSON object"
NOT_UTF8 = "the body is not UTF-8"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        pytest.param(b"", NOT_JSON, id="empty"),
        pytest.param(VALID[:-5], NOT_JSON, id="truncated"),
        pytest.param(VALID + b"}", NOT_JSON, id="trailing-garbage"),
        pytest.param(VALID + b" {}", NOT_JSON, id="two-documents"),
        pytest.param(with_context_field(b"NaN"), "NaN or Infinity", id="nan"),
        pytest.param(with_context_field(b"Infinity"), "NaN or Infinity", id="infinity"),
        pytest.param(with_context_field(b"-Infinity"), "NaN or Infinity", id="minus-infinity"),
        pytest.param(with_context_field(b"1e999"), NUMBER, id="float-overflow"),
        pytest.param(with_context_field(b"-1e999"), NUMBER, id="negative-float-overflow"),
        pytest.param(with_context_field(b"1" + b"0" * 5000), NUMBER, id="huge-int-over-digit-limit"),
        pytest.param(with_context_field(b"-1" + b"0" * 30), NUMBER, id="oversized-int"),
        pytest.param(
            VALID.replace(b'"type": ', b'"type": "x", "type": ', 1), "duplicate keys", id="duplicate-keys"
        ),
        pytest.param(
            VALID.replace(
                b'"tenant_id": ', b'"tenant_id": "' + POSTMAN_PARTNER.encode() + b'", "tenant_id": ', 1
            ),
            "duplicate keys",
            id="nested-duplicate-keys",
        ),
        pytest.param(DEEP_ARRAY, "nests deeper", id="deep-array"),
        pytest.param(DEEP_OBJECT, "nests deeper", id="deep-object"),
        pytest.param(b"[]", NOT_OBJECT, id="top-level-array"),
        pytest.param(b'"text"', NOT_OBJECT, id="top-level-string"),
        pytest.param(b"42", NOT_OBJECT, id="top-level-number"),
        pytest.param(b"null", NOT_OBJECT, id="top-level-null"),
        pytest.param(b"\xef\xbb\xbf" + VALID, "byte order mark", id="utf8-bom"),
        pytest.param(json.dumps(body()).encode("utf-16"), NOT_UTF8, id="utf16-with-bom"),
        pytest.param(json.dumps(body()).encode("utf-16-le"), NOT_JSON, id="utf16-le"),
        pytest.param(json.dumps(body()).encode("utf-16-be"), NOT_JSON, id="utf16-be"),
        pytest.param(json.dumps(body()).encode("utf-32"), NOT_UTF8, id="utf32"),
        pytest.param(with_context_field(b'"caf\xe9"'), NOT_UTF8, id="latin-1"),
        pytest.param(with_context_field(b'"\xed\xa0\x80"'), NOT_UTF8, id="encoded-surrogate"),
        pytest.param(with_context_field(b'"\\ud800"'), "invalid Unicode escape", id="lone-surrogate-escape"),
        pytest.param(with_context_field(b'"a\x00"'), NOT_JSON, id="raw-control-char"),
        pytest.param(b"{'type': 'a'}", NOT_JSON, id="single-quotes"),
    ],
)
def test_invalid_json_is_a_payload_error(raw: bytes, fragment: str) -> None:
    error = rejected(raw)
    assert error.message.startswith("Malformed request:") and fragment in error.message


def test_the_splice_helper_builds_valid_bodies() -> None:
    assert parse_callback_request(with_context_field(b'"ok"')).tenant_id == POSTMAN_PARTNER_TENANT


def test_depth_is_checked_before_json_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    def loads(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("json.loads reached with a too-deep body")

    monkeypatch.setattr(strict_json.json, "loads", loads)
    assert "nests deeper" in rejected(DEEP_ARRAY).message


def test_depth_limit_boundary_and_brackets_inside_strings() -> None:
    def nested(levels: int) -> dict[str, Any]:
        node: dict[str, Any] = {}
        for _ in range(levels):
            node = {"n": node}
        return node

    # The body object is level 1 and "payload" level 2: MAX_DEPTH levels in all still parse.
    fits = body(payload=nested(MAX_DEPTH - 2))
    fits["context"]["note"] = "[" * 500 + "{" * 500  # brackets inside strings do not count
    assert parse_callback_request(encode(fits)).payload == nested(MAX_DEPTH - 2)
    assert "nests deeper" in rejected(encode(body(payload=nested(MAX_DEPTH - 1)))).message


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (body(request_id="r"), "Malformed request: request_id must be a UUID."),
        (body(request_id=REQUEST_ID + "\n"), "Malformed request: request_id must be a UUID."),
        (body(request_id=7), "Malformed request: request_id must be a JSON string."),
        (body(message="extra"), "Malformed request: message is not allowed."),
        (body(**{"<script>": 1}), "Malformed request: the body has an unexpected field."),
        (body(type="CTI.A.P"), "Malformed request: type must be a CTI identifier."),
        (
            body(type="cti.a.p.acgw.request.v1.0~a.p.empty.v1.0\n"),
            "Malformed request: type must be a CTI identifier.",
        ),
        (
            body(type="cti.a.p.acgw.request.v\u0661.0~a.p.empty.v1.0"),
            "Malformed request: type must be a CTI identifier.",
        ),
        (body(created_at="yesterday"), "Malformed request: created_at must be an RFC 3339 date-time."),
        (
            body(created_at="2023-02-30T00:00:00Z"),
            "Malformed request: created_at must be an RFC 3339 date-time.",
        ),
        (
            body(created_at="2023-04-10T15:33:01"),
            "Malformed request: created_at must be an RFC 3339 date-time.",
        ),
        (body(context="x"), "Malformed request: context must be a JSON object."),
        (body(context=context(tenant_id="r")), "Malformed request: context.tenant_id must be a UUID."),
        (body(context=context(callback_id=None)), "Malformed request: context.callback_id is required."),
        (
            body(context=context(endpoint_id="x")),
            "Malformed request: context.endpoint_id must be a CTI identifier.",
        ),
        (
            body(context=context(datacenter_url="http://eu8-cloud.acronis.com")),
            HTTPS_ONLY,
        ),
        (
            body(context=context(datacenter_url="https://user:pw@eu8-cloud.acronis.com")),
            HTTPS_ONLY,
        ),
        (
            body(context=context(datacenter_url="https://" + "a" * 300 + ".com")),
            "Malformed request: context.datacenter_url must be at most 255 characters.",
        ),
        (
            body(context=context(extra={"nested": 1})),
            "Malformed request: context.extra must be a JSON string, number, boolean or null.",
        ),
        (body(payload=None), "Malformed request: payload must be a JSON object."),
        (body(payload=[]), "Malformed request: payload must be a JSON object."),
    ],
)
def test_envelope_schema_violations_have_clear_messages(document: dict[str, Any], message: str) -> None:
    assert rejected(encode(document)).message == message


def test_missing_top_level_field_is_named() -> None:
    document = body()
    del document["context"]
    assert rejected(encode(document)).message == "Malformed request: context is required."


def test_huge_values_are_never_echoed() -> None:
    error = rejected(encode(body(context=context(tenant_id="x" * 100_000))))
    assert "xxx" not in error.message and len(error.message) < 120


@pytest.mark.parametrize(
    ("request_id", "echoed"),
    [
        ("r", "r"),  # a string request_id is echoed even when it fails the schema (§5)
        (REQUEST_ID, REQUEST_ID),
        (7, None),
        (None, None),
        ("x" * 65, None),  # never reflect huge values
        ("a\nb", None),  # nor line breaks (log and header injection)
    ],
)
def test_errors_carry_the_request_id_when_it_can_be_echoed(request_id: Any, echoed: str | None) -> None:
    error = rejected(encode(body(request_id=request_id, type="bad")))
    assert error.request_id == echoed


def test_lone_surrogate_error_still_echoes_the_request_id() -> None:
    raw = encode(body()).replace(b'"payload": {', b'"payload": {"x": "\\udc00", ', 1)
    assert rejected(raw).request_id == REQUEST_ID


@pytest.mark.parametrize(
    ("raw_value", "decoded"),
    [
        (b'"\\ud83d\\ude00"', "\U0001f600"),  # a surrogate pair is one valid character
        (b'"\\\\ud800"', "\\ud800"),  # an escaped backslash, not a surrogate escape
        (b'"caf\xc3\xa9 \\u00e9"', "café é"),
    ],
)
def test_valid_unicode_is_accepted(raw_value: bytes, decoded: str) -> None:
    raw = VALID.replace(b'"payload": {', b'"payload": {"x": ' + raw_value + b", ", 1)
    assert parse_callback_request(raw).payload["x"] == decoded
