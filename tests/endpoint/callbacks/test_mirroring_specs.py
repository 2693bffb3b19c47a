"""The mirroring callbacks as the catalogue serves them: exact ids and types, data center, no end user."""

from __future__ import annotations

import pytest

from endpoint.callbacks.catalogue import build_catalogue
from endpoint.callbacks.mirroring_specs import CALLBACKS, success_type
from endpoint.callbacks.responses import ARRAY_PAYLOAD_TYPES

PARENT = "b9c1a52c-280e-45cd-be77-ba927fc42950"
# name -> (response type, context.datacenter_url required, writes)
EXPECTED = {
    "a.p.partner.mirroring.get_state.v1.0": ("a.p.partner.mirroring.get_state.ok.v1.0", False, False),
    "a.p.partner.mirroring.enable.v1.0": ("a.p.partner.mirroring.enable.ok.v1.0", True, True),
    "a.p.partner.mirroring.reset.v1.0": ("a.p.partner.mirroring.reset.ok.v1.0", False, True),
    "a.p.customer.mirroring.get_state.v1.0": ("a.p.customer.mirroring.get_state.ok.v1.0", True, False),
    "a.p.customer.mirroring.set_state.v1.0": ("a.p.customer.mirroring.set_state.ok.v1.0", True, True),
}


def test_the_five_callbacks_with_their_exact_ids_and_types() -> None:
    catalogue = build_catalogue("vendor.app", mirroring_parent=PARENT)
    served = {key: spec for key, spec in catalogue.items() if key.startswith("cti.a.p.acgw.callback.v2.0~")}
    assert sorted(served) == sorted("cti.a.p.acgw.callback.v2.0~" + name for name in EXPECTED)
    for name, (response, datacenter, writes) in EXPECTED.items():
        spec = served["cti.a.p.acgw.callback.v2.0~" + name]
        assert spec.request_type == "cti.a.p.acgw.request.v1.1~" + name  # its own name, payload or not
        assert spec.response_type == "cti.a.p.acgw.response.v1.1~" + response
        assert (spec.needs_datacenter, spec.writes, spec.end_user) == (datacenter, writes, False)
        assert spec.replayable


def test_off_by_default_and_the_v1_callbacks_keep_their_end_user() -> None:
    catalogue = build_catalogue("vendor.app")
    assert not any("v2.0~" in key for key in catalogue)
    assert all(spec.end_user for spec in catalogue.values())


@pytest.mark.parametrize("name", list(EXPECTED))
def test_success_types_insert_ok_before_the_version(name: str) -> None:
    assert success_type(name) == "cti.a.p.acgw.response.v1.1~" + EXPECTED[name][0]


def test_only_customer_get_state_answers_an_array() -> None:
    arrays = {success_type(cb.name) for cb in CALLBACKS} & ARRAY_PAYLOAD_TYPES
    assert arrays == {success_type("a.p.customer.mirroring.get_state.v1.0")} == ARRAY_PAYLOAD_TYPES
