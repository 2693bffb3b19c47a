"""Strict parsing of a callback request body into a validated, immutable Envelope."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from endpoint.callbacks.schemas import ENVELOPE_SCHEMA, compile_schema, first_error_message
from endpoint.errors import PayloadError
from proxy.origins import normalize_datacenter_url

log = logging.getLogger(__name__)

MAX_DEPTH = 16  # the deepest legitimate envelope (tenant_mapping.write) nests 4 levels
MAX_INT_DIGITS = 20  # no field takes a number; this only keeps int() parsing cheap and bounded
_ECHO_MAX = 64  # longest request_id echoed back in an error envelope
_BOM = b"\xef\xbb\xbf"
# A whole JSON string, escapes included (unrolled-loop form: linear time). An unterminated one is left in
# place; its brackets may then count, which only rejects a body json.loads would reject anyway.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# Lone surrogates can only come from \uD800-\uDFFF escapes (strict UTF-8 decoding refuses encoded ones).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_UNECHOABLE = re.compile(r"[^\x21-\x7e]")

_ENVELOPE = compile_schema(ENVELOPE_SCHEMA)


class MalformedCallback(PayloadError):
    """A 400 for a callback request; ``request_id`` is what the error envelope may echo (None: omit it)."""

    def __init__(self, message: str, *, request_id: str | None = None, reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class Envelope:
    """A schema-valid callback request. ``payload`` is ``{}`` when the request carried none."""

    type: str
    request_id: str
    created_at: str  # RFC 3339 as sent; only its format is checked (acronis-callbacks.md §13 point 9)
    callback_id: str
    endpoint_id: str
    tenant_id: str
    datacenter_url: str | None  # normalized: lower-case host, no trailing slash
    payload: dict[str, Any] = field(default_factory=dict)


def parse_callback_request(raw: bytes) -> Envelope:
    """Parse and validate a callback request body.

    :raise MalformedCallback: (a PayloadError, 400) for anything but a UTF-8 JSON object matching the envelope
        schema; ``request_id`` is set when the body was an object with a short printable string request_id.
    """
    text = _decode(raw)
    document = _loads(text)
    request_id = _echoable_request_id(document)
    if _SURROGATE_ESCAPE.search(text) and not _valid_unicode(document):
        raise MalformedCallback(
            "Malformed request: the body has an invalid Unicode escape.", request_id=request_id
        )
    message = first_error_message(_ENVELOPE, document, "")
    if message is not None:
        raise MalformedCallback(message, request_id=request_id)
    context = document["context"]
    dc_url = context.get("datacenter_url")
    return Envelope(
        type=document["type"],
        request_id=document["request_id"],
        created_at=document["created_at"],
        callback_id=context["callback_id"],
        endpoint_id=context["endpoint_id"],
        tenant_id=context["tenant_id"].lower(),
        datacenter_url=normalize_datacenter_url(dc_url) if dc_url is not None else None,
        payload=document.get("payload", {}),
    )


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The strict JSON rules of the envelope for any body: UTF-8 without BOM, an object, unique keys, no
    NaN, bounded numbers and depth, no lone surrogates.

    :raise MalformedCallback: (a PayloadError, 400).
    """
    text = _decode(raw)
    document = _loads(text)
    if _SURROGATE_ESCAPE.search(text) and not _valid_unicode(document):
        raise MalformedCallback("Malformed request: the body has an invalid Unicode escape.")
    return document


def _decode(raw: bytes) -> str:
    """Strict UTF-8 ourselves: json.loads(bytes) silently accepts UTF-16/32 and a BOM (checklist item 27)."""
    if raw.startswith(_BOM):
        raise MalformedCallback("Malformed request: the body must not start with a byte order mark.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedCallback(
            "Malformed request: the body is not UTF-8.", reason=f"utf-8: {e.reason}"
        ) from e


def _loads(text: str) -> dict[str, Any]:
    _check_depth(text)
    try:
        document = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_reject_constant,
            parse_int=_bounded_int,
            parse_float=_finite_float,
        )
    except MalformedCallback:
        raise
    except (ValueError, RecursionError) as e:
        # JSONDecodeError is a ValueError; so is int()'s digit limit. RecursionError cannot happen after the
        # depth pre-scan, but it must never surface as a 500 either.
        raise MalformedCallback("Malformed request: the body is not valid JSON.", reason=str(e)[:200]) from e
    if not isinstance(document, dict):
        raise MalformedCallback("Malformed request: the body must be a JSON object.")
    return document


def _check_depth(text: str) -> None:
    """Refuse deep nesting before json.loads recurses into it (10k "[" would raise RecursionError).

    Strings are cut out first (their brackets do not nest), then the running depth over the remaining brackets
    is computed with C-level helpers: about 10 ms per MiB instead of a Python loop over every character.
    A body with no more opening brackets than the limit cannot nest deeper, whatever its strings hold:
    counting them is C-speed too and settles every ordinary envelope.
    """
    if text.count("{") + text.count("[") <= MAX_DEPTH:
        return
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if len(brackets) <= MAX_DEPTH:
        return
    if max(accumulate(map(_DEPTH_STEP.__getitem__, brackets))) > MAX_DEPTH:
        raise MalformedCallback(f"Malformed request: the body nests deeper than {MAX_DEPTH} levels.")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        # json keeps the last duplicate silently; two parsers could then disagree on the request.
        raise MalformedCallback("Malformed request: the body has duplicate keys.")
    return result


def _reject_constant(name: str) -> Any:
    raise MalformedCallback("Malformed request: NaN and Infinity are not JSON.")


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise MalformedCallback("Malformed request: the body has an oversized number.")
    return int(digits)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):  # 1e999 parses to inf
        raise MalformedCallback("Malformed request: the body has an oversized number.")
    return value


def _valid_unicode(document: object) -> bool:
    """False on lone surrogates ("\\ud800"): valid JSON escapes, but not text any database can store."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


def _echoable_request_id(document: dict[str, Any]) -> str | None:
    """The request_id an error may echo: short and printable, so errors never reflect junk or huge values."""
    value = document.get("request_id")
    if isinstance(value, str) and 0 < len(value) <= _ECHO_MAX and not _UNECHOABLE.search(value):
        return value
    return None
