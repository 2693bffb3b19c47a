"""Callback request envelopes as the gateway builds them: v1 callbacks, and the v2 mirroring callbacks.

Mirroring (CyberApp v2) differs from v1: callback ids start ``cti.a.p.acgw.callback.v2.0~``, request types
``cti.a.p.acgw.request.v1.1~`` and carry the callback's own name (also without a payload), and the docs'
examples send the zero ``created_at``. The endpoint id the gateway puts in ``context.endpoint_id`` is also
the role its token's scope names; the docs show the ``endpoint.v1.1~`` form for enable, reset and set_state
and the ``endpoint.v1.0~`` form for both get_state calls, so both forms are sent here by default.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Any

from simulators.controller.callbacks import CALLBACK_PREFIX, EMPTY_PREDEFINED, EMPTY_REQUEST, REQUEST_PREFIX

MIRRORING_CALLBACK_PREFIX = "cti.a.p.acgw.callback.v2.0~"
MIRRORING_REQUEST_PREFIX = "cti.a.p.acgw.request.v1.1~"
PARTNER_GET_STATE = "a.p.partner.mirroring.get_state.v1.0"
PARTNER_ENABLE = "a.p.partner.mirroring.enable.v1.0"
PARTNER_RESET = "a.p.partner.mirroring.reset.v1.0"
CUSTOMER_GET_STATE = "a.p.customer.mirroring.get_state.v1.0"
CUSTOMER_SET_STATE = "a.p.customer.mirroring.set_state.v1.0"
MIRRORING = frozenset(
    {PARTNER_GET_STATE, PARTNER_ENABLE, PARTNER_RESET, CUSTOMER_GET_STATE, CUSTOMER_SET_STATE}
)
ZERO_TIME = "0001-01-01T00:00:00Z"  # what the mirroring examples send as created_at
DEFAULT_APP_CODE = "vendor.app"
DEFAULT_TENANT = "00000000-0000-0000-0000-000000000000"
DEFAULT_DATACENTER = "https://eu8-cloud.acronis.com"


def endpoint_id(callback: str, app_code: str = DEFAULT_APP_CODE) -> str:
    """The endpoint id the gateway sends with ``callback`` (the form the docs' examples show for it)."""
    if callback in MIRRORING and callback not in (PARTNER_GET_STATE, CUSTOMER_GET_STATE):
        return f"cti.a.p.acgw.endpoint.v1.1~{app_code}.endpoint.v1.1"
    return f"cti.a.p.acgw.endpoint.v1.0~{app_code}.endpoint.v1.0"


def envelope(
    callback: str,
    payload: Any = None,
    *,
    endpoint: str,
    tenant_id: str = DEFAULT_TENANT,
    datacenter_url: str | None = DEFAULT_DATACENTER,
    request_id: str | None = None,
    created_at: str | None = None,
) -> dict[str, Any]:
    """The request envelope; ``callback`` without prefix. ``payload`` None: the key is left out."""
    if callback in MIRRORING:
        request_type = MIRRORING_REQUEST_PREFIX + callback
        callback_id = MIRRORING_CALLBACK_PREFIX + callback
        created = created_at or ZERO_TIME
    else:
        request_type = EMPTY_REQUEST if callback in EMPTY_PREDEFINED else REQUEST_PREFIX + callback
        callback_id = CALLBACK_PREFIX + callback
        created = created_at or dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    context = {"callback_id": callback_id, "endpoint_id": endpoint, "tenant_id": tenant_id}
    if datacenter_url is not None:
        context["datacenter_url"] = datacenter_url
    body: dict[str, Any] = {
        "type": request_type,
        "request_id": request_id or str(uuid.uuid4()),
        "created_at": created,
        "context": context,
    }
    if payload is not None:
        body["payload"] = payload
    return body


def cyberapp_extra(extra: dict[str, Any] | None = None) -> str:
    """``X-CyberApp-Extra``: base64 of a JSON object; ``e30=`` (``{}``) when there is nothing extra."""
    return base64.b64encode(json.dumps(extra or {}, separators=(",", ":")).encode()).decode("ascii")
