"""CyberApp callback requests as the controller forwards them: the envelope and X-CyberApp-Auth."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Any

CALLBACK_PREFIX = "cti.a.p.acgw.callback.v1.0~"
REQUEST_PREFIX = "cti.a.p.acgw.request.v1.0~"
EMPTY_REQUEST = REQUEST_PREFIX + "a.p.empty.v1.0"
# Predefined callbacks whose request carries no payload (acronis-callbacks.md §9).
EMPTY_PREDEFINED = {"a.p.enablement.read.v1.0", "a.p.enablement.reset.v1.0", "a.p.tenant_mapping.read.v1.0"}


def callback_envelope(
    callback: str,
    payload: dict[str, Any] | None,
    *,
    tenant_id: str,
    datacenter_url: str,
    app_code: str = "vendor.app",
    request_id: str | None = None,
) -> dict[str, Any]:
    """The request envelope of §4; ``callback`` is the id without prefix (``a.p.enablement.read.v1.0``)."""
    envelope: dict[str, Any] = {
        "type": EMPTY_REQUEST if callback in EMPTY_PREDEFINED else REQUEST_PREFIX + callback,
        "request_id": request_id or str(uuid.uuid4()),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "context": {
            "callback_id": CALLBACK_PREFIX + callback,
            "endpoint_id": f"cti.a.p.acgw.endpoint.v1.0~{app_code}.endpoint.v1.0",
            "tenant_id": tenant_id,
            "datacenter_url": datacenter_url,
        },
    }
    if payload is not None:
        envelope["payload"] = payload
    return envelope


def cyberapp_auth(identity: str, password: str) -> str:
    """base64("<identity>:" + {"password": ...}) — the enablement form's Identity and Secret fields."""
    return base64.b64encode(f"{identity}:{json.dumps({'password': password})}".encode()).decode("ascii")
