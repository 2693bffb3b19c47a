"""The one strict JSON reader: every JSON we accept from outside (callback bodies, X-CyberApp-* headers,
spool files) is read by these rules, so no two of our parsers can disagree about a document.

- UTF-8 only, without a byte order mark (``json.loads(bytes)`` would also take UTF-16/32 and a BOM).
- No NaN/Infinity (not JSON), no duplicate keys (``json`` keeps the last silently: two parsers in a chain
  could then each see a different request), numbers of bounded size, nesting of bounded depth (checked
  before ``json.loads`` recurses), no lone surrogates (valid escapes, but text no database stores).
"""

from __future__ import annotations

import functools
import json
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 16  # the deepest legitimate document (tenant_mapping.write) nests 4 levels
MAX_INT_DIGITS = 20  # no field takes a number; this only keeps int() parsing cheap and bounded
_BOM = b"\xef\xbb\xbf"
# A whole JSON string, escapes included (unrolled-loop form: linear time). An unterminated one is left in
# place; its brackets may then count, which only rejects a text json.loads would reject anyway.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# Lone surrogates can only come from \uD800-\uDFFF escapes (strict UTF-8 decoding refuses encoded ones).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonRejected(ValueError):
    """Not JSON by our rules; ``str()`` is a phrase fit for a client message ("has duplicate keys").

    ``document`` is the parsed value when only a check after parsing failed (a lone surrogate), else None.
    """

    def __init__(self, phrase: str, document: Any = None) -> None:
        super().__init__(phrase)
        self.document = document


def decode_utf8(raw: bytes) -> str:
    """:raise JsonRejected: a BOM, or bytes that are not UTF-8."""
    if raw.startswith(_BOM):
        raise JsonRejected("must not start with a byte order mark")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise JsonRejected(f"is not UTF-8 (byte {e.start})") from None


def loads(text: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``text`` as JSON by the rules above. :raise JsonRejected:"""
    _check_depth(text, max_depth)
    try:
        document = _decoder().decode(text)
    except JsonRejected:
        raise
    except (ValueError, RecursionError):
        # JSONDecodeError is a ValueError; so is int()'s digit limit. RecursionError cannot happen after the
        # depth pre-scan, but it must never surface as a 500 either.
        raise JsonRejected("is not valid JSON") from None
    if _SURROGATE_ESCAPE.search(text) and not _valid_unicode(document):
        raise JsonRejected("has an invalid Unicode escape", document)
    return document


@functools.cache
def _decoder() -> json.JSONDecoder:
    """One decoder with our hooks (json.loads with hooks builds a new JSONDecoder per call)."""
    return json.JSONDecoder(
        object_pairs_hook=_unique_keys,
        parse_constant=_reject_constant,
        parse_int=_bounded_int,
        parse_float=_finite_float,
    )


def _check_depth(text: str, max_depth: int) -> None:
    """Refuse deep nesting before json.loads recurses into it (10k "[" would raise RecursionError).

    A text with no more opening brackets than the limit cannot nest deeper, whatever its strings hold:
    two C-speed counts settle every ordinary document. Otherwise strings are cut out (their brackets do
    not nest) and the running depth is computed with C-level helpers (~10 ms per MiB).
    """
    if text.count("{") + text.count("[") <= max_depth:
        return
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if len(brackets) <= max_depth:
        return
    if max(accumulate(map(_DEPTH_STEP.__getitem__, brackets))) > max_depth:
        raise JsonRejected(f"nests deeper than {max_depth} levels")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise JsonRejected("has duplicate keys")
    return result


def _reject_constant(name: str) -> Any:
    raise JsonRejected("has NaN or Infinity, which are not JSON")


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise JsonRejected("has an oversized number")
    return int(digits)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):  # 1e999 parses to inf
        raise JsonRejected("has an oversized number")
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
