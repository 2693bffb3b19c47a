"""The one strict JSON reader: the same rules for callback bodies, X-CyberApp-* headers and spool files."""

from __future__ import annotations

import json
from typing import Any

import pytest

from endpoint.parsing import strict_json
from endpoint.parsing.strict_json import MAX_DEPTH, JsonRejected, decode_utf8, loads


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ('{"a": 1, "a": 2}', "has duplicate keys"),
        ('{"a": {"b": 1, "b": 1}}', "has duplicate keys"),
        ('{"a": NaN}', "has NaN or Infinity"),
        ('{"a": -Infinity}', "has NaN or Infinity"),
        ('{"a": 1e999}', "has an oversized number"),
        ('{"a": ' + "9" * 21 + "}", "has an oversized number"),
        ('{"a": "\\udc00"}', "has an invalid Unicode escape"),
        ("[" * 17 + "]" * 17, f"nests deeper than {MAX_DEPTH} levels"),
        ("{'a': 1}", "is not valid JSON"),
        ('{"a": 1} x', "is not valid JSON"),
        ("", "is not valid JSON"),
    ],
)
def test_rejections_name_the_rule(text: str, phrase: str) -> None:
    with pytest.raises(JsonRejected) as info:
        loads(text)
    assert str(info.value).startswith(phrase)


@pytest.mark.parametrize(
    "document",
    [{"a": [1, 2.5, True, None, "x"]}, [], "text", 12345678901234567890, {"s": "[[[[[[[[[[[[[[[[[[[["}],
)
def test_plain_json_reads_as_json_does(document: Any) -> None:
    assert loads(json.dumps(document)) == document  # brackets inside strings do not count as nesting


def test_the_limit_itself_still_parses() -> None:
    assert loads("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    assert loads("[" * 20 + "]" * 20, max_depth=20) is not None


def test_a_lone_surrogate_keeps_the_parsed_document_for_the_caller() -> None:
    with pytest.raises(JsonRejected) as info:
        loads('{"request_id": "r-1", "x": "\\ud800"}')
    assert info.value.document == {"request_id": "r-1", "x": "\ud800"}


def test_depth_is_refused_before_the_recursive_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("json.loads reached")

    monkeypatch.setattr(strict_json.json, "loads", never)
    with pytest.raises(JsonRejected, match="nests deeper"):
        loads("[" * 100_000)


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        (b"\xef\xbb\xbf{}", "must not start with a byte order mark"),
        (b'{"a": "\xe9"}', "is not UTF-8 (byte 7)"),
    ],
)
def test_bytes_must_be_utf8_without_a_bom(raw: bytes, phrase: str) -> None:
    with pytest.raises(JsonRejected, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        decode_utf8(raw)
    assert decode_utf8(b"{}") == "{}"
