"""normalize_datacenter_url: the one spelling of a data center, for stored mappings and configured DCs."""

from __future__ import annotations

import json

import pytest

from endpoint.callbacks.envelope import parse_callback_request
from endpoint.outbox.settings import DatacenterSettings
from proxy.origins import normalize_datacenter_url


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("HTTPS://EU8-Cloud.Acronis.com/", "https://eu8-cloud.acronis.com"),
        ("https://dc.example:443", "https://dc.example"),
        ("https://dc.example:8443", "https://dc.example:8443"),
        ("https://dc.example/some/path/", "https://dc.example"),  # a DC is an origin
        ("https://dc.example?x=1#frag", "https://dc.example"),
        ("  https://dc.example  ", "https://dc.example"),
        ("http://127.0.0.1:80/", "http://127.0.0.1"),  # the local stand-in keeps its scheme
        ("http://127.0.0.1:9101", "http://127.0.0.1:9101"),
        ("https://[::1]:8443/", "https://[::1]:8443"),
    ],
)
def test_one_spelling_per_origin(url: str, key: str) -> None:
    assert normalize_datacenter_url(url) == key


def test_a_mapping_stored_from_a_callback_matches_the_configured_dc() -> None:
    """What the envelope stores and what the outbox looks up are made by the same function."""
    configured = DatacenterSettings(
        url="https://EU8-cloud.acronis.com:443", client_id="c", client_secret_env="S"
    )
    document = {
        "type": "cti.a.p.acgw.request.v1.0~a.p.empty.v1.0",
        "request_id": "7f1c2d9e-5b7a-4a61-9a8e-3c2b1d0e9f11",
        "created_at": "2026-01-01T00:00:00Z",
        "context": {
            "callback_id": "cti.a.p.acgw.callback.v1.0~a.p.enablement.read.v1.0",
            "endpoint_id": "cti.a.p.acgw.endpoint.v1.0~vendor.app.endpoint.v1.0",
            "tenant_id": "954ef80f-5acb-405b-81df-e850606b406d",
            "datacenter_url": "https://eu8-cloud.acronis.com/path/",
        },
    }
    raw = json.dumps(document).encode()
    assert parse_callback_request(raw).datacenter_url == configured.key == "https://eu8-cloud.acronis.com"
