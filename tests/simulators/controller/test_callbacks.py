"""Envelopes and X-CyberApp-Auth as the controller forwards them; they parse on our side."""

from __future__ import annotations

import base64
import json

from endpoint.auth.credentials import decode_auth_header
from endpoint.callbacks.envelope import parse_callback_request
from simulators.controller.callbacks import EMPTY_REQUEST, callback_envelope, cyberapp_auth

TENANT = "0dd47bbb-d065-447f-ab7c-06e05887078b"


def test_predefined_reads_use_the_empty_type_and_no_payload() -> None:
    envelope = callback_envelope(
        "a.p.enablement.read.v1.0", None, tenant_id=TENANT, datacenter_url="https://eu8-cloud.acronis.com"
    )
    assert envelope["type"] == EMPTY_REQUEST and "payload" not in envelope
    parsed = parse_callback_request(json.dumps(envelope).encode())
    assert parsed.callback_id.endswith("a.p.enablement.read.v1.0") and parsed.tenant_id == TENANT


def test_custom_callbacks_use_their_own_type() -> None:
    envelope = callback_envelope(
        "vendor.app.user_write.v1.0",
        {"login": "a", "name": "b", "email": "c@d"},
        tenant_id=TENANT,
        datacenter_url="https://eu8-cloud.acronis.com",
        request_id="r",
    )
    assert envelope["type"] == "cti.a.p.acgw.request.v1.0~vendor.app.user_write.v1.0"
    assert envelope["request_id"] == "r" and envelope["payload"]["login"] == "a"


def test_cyberapp_auth_round_trips_through_our_decoder() -> None:
    value = cyberapp_auth("jdoe", "pässwörd:with:colons")
    assert base64.b64decode(value).decode().startswith("jdoe:")
    credentials = decode_auth_header(value, 8192)
    assert (credentials.identity, credentials.password) == ("jdoe", "pässwörd:with:colons")
