"""The mirroring callbacks' CTIs and payload schemas, as the catalogue serves them."""

from __future__ import annotations

import pytest

from endpoint.callbacks.catalogue import build_catalogue
from endpoint.callbacks.mirroring_specs import CALLBACKS, success_type
from endpoint.callbacks.schemas import first_error_message

NAMES = [name for name, *_ in CALLBACKS]


def test_the_five_callbacks_with_their_exact_types() -> None:
    catalogue = build_catalogue("vendor.app", mirroring_parent="b9c1a52c-280e-45cd-be77-ba927fc42950")
    for name in NAMES:
        spec = catalogue["cti.a.p.acgw.callback.v2.0~" + name]
        assert spec.request_type == "cti.a.p.acgw.request.v1.1~" + name
        assert (
            spec.response_type.startswith("cti.a.p.acgw.response.v1.1~") and ".ok.v1.0" in spec.response_type
        )
        assert not spec.end_user
    assert {name.split(".")[2] + "." + name.split(".")[4] for name in NAMES} == {
        "partner.get_state",
        "partner.enable",
        "partner.reset",
        "customer.get_state",
        "customer.set_state",
    }
    assert not any("v2.0" in key for key in build_catalogue("vendor.app"))  # off by default


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "a.p.partner.mirroring.get_state.v1.0",
            "cti.a.p.acgw.response.v1.1~a.p.partner.mirroring.get_state.ok.v1.0",
        ),
        (
            "a.p.customer.mirroring.set_state.v1.0",
            "cti.a.p.acgw.response.v1.1~a.p.customer.mirroring.set_state.ok.v1.0",
        ),
    ],
)
def test_success_types_insert_ok_before_the_version(name: str, expected: str) -> None:
    assert success_type(name) == expected


def test_settings_accept_flat_scalars_only() -> None:
    _, schema, _, _ = CALLBACKS[1]  # partner enable
    base = {"acronis_tenant_id": "aaaaaaaa-0000-4000-8000-000000000001", "acronis_tenant_name": "R"}
    flat = {"a": "x", "b": 1, "c": True, "d": None, "e": 1.5}
    assert first_error_message(schema, {**base, "settings": flat}, "payload") is None
    assert first_error_message(schema, {**base, "settings": {"a": [1]}}, "payload") is not None
    assert first_error_message(schema, {**base, "surprise": 1}, "payload") is not None
