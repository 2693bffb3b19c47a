"""The callback table: ids with their CTI prefixes, types, ledger use, schemas; built from the app code."""

from __future__ import annotations

import pytest

from endpoint.callbacks.catalogue import CallbackSpec, CallContext, build_catalogue
from endpoint.parsing.schemas import CTI_RE, first_error_message

CB = "cti.a.p.acgw.callback.v1.0~"
RQ = "cti.a.p.acgw.request.v1.0~"
RS = "cti.a.p.acgw.response.v1.0~"

EXPECTED = {
    # callback: (request type, success type, writes)
    "a.p.enablement.read.v1.0": ("a.p.empty.v1.0", "a.p.enablement.read.ok.v1.0", False),
    "a.p.enablement.write.v1.0": ("a.p.enablement.write.v1.0", "a.p.success_no_content.v1.0", True),
    "a.p.enablement.reset.v1.0": ("a.p.empty.v1.0", "a.p.success_no_content.v1.0", True),
    "a.p.topology.read.v1.0": ("a.p.topology.read.v1.0", "a.p.topology.read.ok.v1.0", False),
    "a.p.tenant_mapping.read.v1.0": ("a.p.empty.v1.0", "a.p.tenant_mapping.read.ok.v1.0", False),
    "a.p.tenant_mapping.write.v1.0": ("a.p.tenant_mapping.write.v1.0", "a.p.success_no_content.v1.0", True),
    "vendor.app.users_read.v1.0": ("vendor.app.users_read.v1.0", "vendor.app.users_read_success.v1.0", False),
    "vendor.app.user_write.v1.0": ("vendor.app.user_write.v1.0", "vendor.app.user_write_success.v1.0", True),
    "vendor.app.user_update.v1.0": (
        "vendor.app.user_update.v1.0",
        "vendor.app.user_update_success.v1.0",
        True,
    ),
    "vendor.app.user_delete.v1.0": (
        "vendor.app.user_delete.v1.0",
        "vendor.app.user_delete_success.v1.0",
        True,
    ),
    "vendor.app.reset_password.v1.0": (
        "vendor.app.reset_password.v1.0",
        "vendor.app.reset_password_success.v1.0",
        True,
    ),
}


@pytest.fixture(scope="module")
def catalogue() -> dict[str, CallbackSpec]:
    return dict(build_catalogue("vendor.app"))


def test_the_catalogue_serves_exactly_the_documented_callbacks(catalogue: dict[str, CallbackSpec]) -> None:
    assert set(catalogue) == {CB + name for name in EXPECTED}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_callback_has_its_types_and_ledger_use(catalogue: dict[str, CallbackSpec], name: str) -> None:
    request, success, writes = EXPECTED[name]
    spec = catalogue[CB + name]
    assert spec.callback_id == CB + name
    assert spec.request_type == RQ + request
    assert spec.response_type == RS + success
    assert spec.writes is writes
    for cti in (spec.callback_id, spec.request_type, spec.response_type):
        assert CTI_RE.fullmatch(cti)


def test_only_reset_password_generates_a_password_and_is_not_replayed(
    catalogue: dict[str, CallbackSpec],
) -> None:
    fresh = {name for name, spec in catalogue.items() if spec.new_password}
    assert fresh == {CB + "vendor.app.reset_password.v1.0"}
    assert [s.replayable for s in catalogue.values()].count(False) == 1


def test_datacenter_is_required_where_it_is_used(catalogue: dict[str, CallbackSpec]) -> None:
    needing = {name for name, spec in catalogue.items() if spec.needs_datacenter}
    assert needing == {
        CB + "a.p.enablement.write.v1.0",
        CB + "a.p.tenant_mapping.read.v1.0",
        CB + "a.p.tenant_mapping.write.v1.0",
    }


@pytest.mark.parametrize(
    "name",
    [
        "a.p.enablement.read.v1.0",
        "a.p.enablement.reset.v1.0",
        "a.p.topology.read.v1.0",
        "a.p.tenant_mapping.read.v1.0",
        "vendor.app.users_read.v1.0",
    ],
)
def test_payload_less_callbacks_accept_only_an_empty_object(
    catalogue: dict[str, CallbackSpec], name: str
) -> None:
    schema = catalogue[CB + name].payload_schema
    assert first_error_message(schema, {}, "payload") is None
    assert (
        first_error_message(schema, {"tenant_id": "x"}, "payload")
        == "Malformed request: payload.tenant_id is not allowed."
    )


def test_custom_callbacks_follow_the_configured_app_code() -> None:
    catalogue = build_catalogue("acme.backup")
    custom = sorted(name for name in catalogue if not name.startswith(CB + "a.p."))
    assert custom == sorted(
        CB + f"acme.backup.{n}.v1.0"
        for n in ("users_read", "user_write", "user_update", "user_delete", "reset_password")
    )
    spec = catalogue[CB + "acme.backup.user_write.v1.0"]
    assert spec.request_type == RQ + "acme.backup.user_write.v1.0"
    assert spec.response_type == RS + "acme.backup.user_write_success.v1.0"
    assert not any(
        "vendor.app" in repr((s.callback_id, s.request_type, s.response_type)) for s in catalogue.values()
    )


@pytest.mark.parametrize(
    "app_code", ["", "vendor", "Vendor.App", "vendor.app~x", "vendor.app.v1.0", "1v.app"]
)
def test_an_app_code_that_cannot_form_a_cti_is_refused(app_code: str) -> None:
    with pytest.raises(ValueError):
        build_catalogue(app_code)


def test_call_context_never_shows_the_password() -> None:
    call = CallContext("org", None, "tenant", None, {}, password="clear-pw", password_hash="$argon2id$...")
    assert "clear-pw" not in repr(call) and "argon2" not in repr(call)
