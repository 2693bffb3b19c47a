"""Envelopes as the gateway builds them: v1 and mirroring prefixes, endpoint id forms, absent payloads."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from simulators.gateway import envelopes as cb


def test_a_mirroring_request_uses_the_v2_prefixes_and_the_zero_time() -> None:
    body = cb.envelope(cb.PARTNER_ENABLE, {"acronis_tenant_id": "p"}, endpoint="e", tenant_id="p")
    assert body["type"] == "cti.a.p.acgw.request.v1.1~a.p.partner.mirroring.enable.v1.0"
    assert body["context"]["callback_id"] == "cti.a.p.acgw.callback.v2.0~a.p.partner.mirroring.enable.v1.0"
    assert body["created_at"] == "0001-01-01T00:00:00Z"
    assert body["context"] == {
        "callback_id": "cti.a.p.acgw.callback.v2.0~a.p.partner.mirroring.enable.v1.0",
        "endpoint_id": "e",
        "tenant_id": "p",
        "datacenter_url": "https://eu8-cloud.acronis.com",
    }
    assert body["payload"] == {"acronis_tenant_id": "p"}


@pytest.mark.parametrize(
    ("callback", "request_type"),
    [
        ("a.p.enablement.read.v1.0", "cti.a.p.acgw.request.v1.0~a.p.empty.v1.0"),
        ("a.p.tenant_mapping.write.v1.0", "cti.a.p.acgw.request.v1.0~a.p.tenant_mapping.write.v1.0"),
        ("vendor.app.users_read.v1.0", "cti.a.p.acgw.request.v1.0~vendor.app.users_read.v1.0"),
        (cb.PARTNER_RESET, "cti.a.p.acgw.request.v1.1~a.p.partner.mirroring.reset.v1.0"),
    ],
)
def test_request_types(callback: str, request_type: str) -> None:
    body = cb.envelope(callback, endpoint="e", datacenter_url=None, request_id="r")
    assert body["type"] == request_type and body["request_id"] == "r"
    assert "payload" not in body and "datacenter_url" not in body["context"]


def test_v1_requests_carry_the_time_they_were_made() -> None:
    created = dt.datetime.fromisoformat(cb.envelope("a.p.enablement.read.v1.0", endpoint="e")["created_at"])
    assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 5


@pytest.mark.parametrize(
    ("callback", "form"),
    [
        (cb.PARTNER_GET_STATE, "cti.a.p.acgw.endpoint.v1.0~acme.app.endpoint.v1.0"),
        (cb.CUSTOMER_GET_STATE, "cti.a.p.acgw.endpoint.v1.0~acme.app.endpoint.v1.0"),
        (cb.PARTNER_ENABLE, "cti.a.p.acgw.endpoint.v1.1~acme.app.endpoint.v1.1"),
        (cb.PARTNER_RESET, "cti.a.p.acgw.endpoint.v1.1~acme.app.endpoint.v1.1"),
        (cb.CUSTOMER_SET_STATE, "cti.a.p.acgw.endpoint.v1.1~acme.app.endpoint.v1.1"),
        ("a.p.enablement.write.v1.0", "cti.a.p.acgw.endpoint.v1.0~acme.app.endpoint.v1.0"),
    ],
)
def test_endpoint_id_forms_follow_the_docs_examples(callback: str, form: str) -> None:
    assert cb.endpoint_id(callback, "acme.app") == form


def test_cyberapp_extra_is_base64_json() -> None:
    assert cb.cyberapp_extra() == "e30="
    assert json.loads(base64.b64decode(cb.cyberapp_extra({"a": 1}))) == {"a": 1}
