"""Callback response envelopes: success and error bodies, exactly the fields the Gateway schema allows."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

RESPONSE_PREFIX = "cti.a.p.acgw.response.v1.0~"
# The only response type whose payload is a JSON array (customer.mirroring.get_state); the others: objects.
ARRAY_PAYLOAD_TYPES = frozenset({"cti.a.p.acgw.response.v1.1~a.p.customer.mirroring.get_state.ok.v1.0"})


# The version (4) and variant (RFC 4122) bits of a UUID4, as uuid.UUID(int=..., version=4) sets them.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def response_id() -> str:
    """A fresh UUID4 for ``response_id``: an identifier, not a secret, so from the random module (reseeded
    in every forked worker) rather than uuid4's os.urandom system call (~1 % of a request), and formatted
    directly rather than through a uuid.UUID object (another 1 %)."""
    h = "%032x" % (random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True, slots=True)
class CallbackResponse:
    """What the web layer writes: ``body`` as JSON with ``status``."""

    status: int
    body: dict[str, Any]


def success_envelope(
    request_id: str, response_type: str, payload: dict[str, Any] | list[Any] | None
) -> dict[str, Any]:
    """A success body; the ``payload`` key is left out entirely when the response type defines none (§5).

    A payload is an object, except customer.mirroring.get_state's, which is an array.
    :raise TypeError: a payload of the other shape (a bug: the answer would break the response schema).
    """
    if payload is not None and isinstance(payload, list) != (response_type in ARRAY_PAYLOAD_TYPES):
        raise TypeError(f"{response_type}: payload of the wrong JSON type ({type(payload).__name__})")
    body: dict[str, Any] = {"type": response_type, "request_id": request_id, "response_id": response_id()}
    if payload is not None:
        body["payload"] = payload
    return body


def error_type(app_code: str) -> str:
    """The project-defined error response type (acronis-callbacks.md §13 point 5)."""
    return f"{RESPONSE_PREFIX}{app_code}.error.v1.0"


def error_envelope(request_id: str | None, message: str, app_code: str) -> dict[str, Any]:
    """An error body: type, request_id (only when known), response_id and err_message. No other field, ever.

    ``message`` must already be client-safe (ServiceError.message), never exception text.
    """
    body: dict[str, Any] = {"type": error_type(app_code)}
    if request_id is not None:
        body["request_id"] = request_id
    body["response_id"] = response_id()
    body["err_message"] = message
    return body
