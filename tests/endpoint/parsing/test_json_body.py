"""The shared body reader: one strict JSON object, refused with a neutral error both protocols can use."""

from __future__ import annotations

import pytest

from endpoint.aps.payloads import parse_tenant
from endpoint.callbacks.envelope import MalformedCallback
from endpoint.errors import PayloadError
from endpoint.parsing.json_body import MalformedBody, parse_json_object


def test_an_object_is_returned_as_parsed() -> None:
    assert parse_json_object(b'{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}


@pytest.mark.parametrize(
    ("raw", "fragment", "parsed"),
    [
        (b"[1, 2]", "must be a JSON object", False),
        (b'{"a": 1, "a": 2}', "duplicate keys", False),
        (b'{"a": NaN}', "", False),
        (b"\xff", "UTF-8", False),
        (b'{"request_id": "r-1", "name": "\\ud800"}', "", True),  # a lone surrogate: refused after parsing
    ],
)
def test_anything_else_is_a_malformed_body(raw: bytes, fragment: str, parsed: bool) -> None:
    with pytest.raises(MalformedBody) as info:
        parse_json_object(raw)
    assert isinstance(info.value, PayloadError) and fragment in info.value.message
    assert isinstance(info.value.document, dict) is parsed  # what the callback envelope may echo from


def test_an_aps_body_is_refused_without_the_callback_error() -> None:
    """APS bodies share the reader, not the callback contract: no MalformedCallback, no request_id echo."""
    with pytest.raises(PayloadError) as info:
        parse_tenant(b'{"aps": {"id": 1}, "aps": {}}')
    assert type(info.value) is MalformedBody and not isinstance(info.value, MalformedCallback)
