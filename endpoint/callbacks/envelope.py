"""Strict parsing of a callback request body into a validated, immutable Envelope."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from endpoint.callbacks.schemas import ENVELOPE_SCHEMA
from endpoint.errors import PayloadError
from endpoint.parsing.json_body import MalformedBody, parse_json_object
from endpoint.parsing.schemas import compile_schema, first_error_message
from endpoint.parsing.strict_json import MAX_DEPTH
from proxy.origins import normalize_datacenter_url

log = logging.getLogger(__name__)

__all__ = ["MAX_DEPTH", "Envelope", "MalformedCallback", "parse_callback_request"]

_ECHO_MAX = 64  # longest request_id echoed back in an error envelope
_UNECHOABLE = re.compile(r"[^\x21-\x7e]")
_ZERO_DATE = "0001-01-01"  # the zero time (Go's), whatever its offset: created_at "not given"

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

    def created_at_skew(self, now: float) -> float | None:
        """Seconds from ``created_at`` to ``now`` (negative: from the future), for the log only; None when
        it is the zero time (``0001-01-01T00:00:00Z``, Acronis' mirroring examples), which means "not
        given", or a time Python cannot represent (a leap second)."""
        if self.created_at.startswith(_ZERO_DATE):
            return None
        try:
            created = dt.datetime.fromisoformat(self.created_at.upper())
        except ValueError:
            return None
        return now - created.timestamp()


def parse_callback_request(raw: bytes) -> Envelope:
    """Parse and validate a callback request body.

    :raise MalformedCallback: (a PayloadError, 400) for anything but a UTF-8 JSON object matching the envelope
        schema; ``request_id`` is set when the body was an object with a short printable string request_id.
    """
    try:
        document = parse_json_object(raw)
    except MalformedBody as e:
        echo = _echoable_request_id(e.document) if isinstance(e.document, dict) else None
        raise MalformedCallback(e.message, request_id=echo) from None
    request_id = _echoable_request_id(document)
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


def _echoable_request_id(document: dict[str, Any]) -> str | None:
    """The request_id an error may echo: short and printable, so errors never reflect junk or huge values."""
    value = document.get("request_id")
    if isinstance(value, str) and 0 < len(value) <= _ECHO_MAX and not _UNECHOABLE.search(value):
        return value
    return None
