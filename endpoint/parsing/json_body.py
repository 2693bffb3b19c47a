"""A request body that must be one JSON object, read by the strict rules (strict_json.py)."""

from __future__ import annotations

from typing import Any

from endpoint.errors import PayloadError
from endpoint.parsing import strict_json
from endpoint.parsing.strict_json import JsonRejected


class MalformedBody(PayloadError):
    """The body is not a strict-JSON object (400).

    ``document`` is what did parse when only a check after parsing failed (a lone surrogate, say), so a
    protocol can still read what its error answer may echo; None otherwise.
    """

    def __init__(self, message: str, *, document: object = None) -> None:
        super().__init__(message)
        self.document = document


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The body as a dict. :raise MalformedBody: not UTF-8, not strict JSON, or not an object."""
    try:
        document = strict_json.loads(strict_json.decode_utf8(raw))
    except JsonRejected as e:
        raise MalformedBody(f"Malformed request: the body {e}.", document=e.document) from None
    if not isinstance(document, dict):
        raise MalformedBody("Malformed request: the body must be a JSON object.")
    return document
