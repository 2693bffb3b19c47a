"""Mirroring payloads: schemas (names, closed objects, list caps) and the rules a schema cannot say
(settings limits, at least one list, every tenant id once); settings errors never quote their content."""

from __future__ import annotations

from typing import Any

import pytest

from endpoint.callbacks import mirroring_payloads as payloads
from endpoint.errors import PayloadError
from endpoint.parsing.schemas import first_error_message
from tests.endpoint.callbacks.mirrored import C1, C2, P, lists, off, on, partner


def schema_error(schema: Any, payload: dict[str, Any]) -> str | None:
    return first_error_message(schema, payload, "payload")


def enable_error(payload: dict[str, Any]) -> str | None:
    """The 400 message partner.mirroring.enable would answer, or None."""
    message = schema_error(payloads.ENABLE, payload)
    if message is None:
        try:
            payloads.check_enable(payload)
        except PayloadError as e:
            return e.message
    return message


@pytest.mark.parametrize(
    ("name", "accepted"),
    [
        ("R", True),
        ("x" * 255, True),
        ("Müller & Söhne GmbH 🚀", True),
        ("", False),
        ("   ", False),
        ("x" * 256, False),
        ("a\nb", False),
        ("tab\there", False),
        ("nel\x85", False),
        ("line\u2028sep", False),
        ("del\x7f", False),
    ],
)
def test_names_are_1_to_255_characters_without_control_characters(name: str, accepted: bool) -> None:
    assert (enable_error(partner(name)) is None) is accepted
    set_state = lists(partner_name=name, enabled=[])
    assert (schema_error(payloads.SET_STATE, set_state) is None) is accepted
    assert (schema_error(payloads.SET_STATE, lists(enabled=[on(C1, name)])) is None) is accepted


SECRET = "hunter2-value"


@pytest.mark.parametrize(
    ("settings", "accepted"),
    [
        ({}, True),
        ({"a": "x", "b": 1, "c": True, "d": None, "e": 1.5, "f": -3}, True),
        ({str(i): i for i in range(32)}, True),
        ({"k" * 64: 1}, True),
        ({"k": "v" * 1024}, True),
        ({"k": "€" * 341}, True),  # 1023 bytes
        ({str(i): i for i in range(33)}, False),
        ({"k" * 65: 1}, False),
        ({"k": "v" * 1025}, False),
        ({"k": "€" * 342}, False),  # 342 characters, but 1026 bytes of UTF-8
        ({"k": {"nested": SECRET}}, False),
        ({"k": [SECRET]}, False),
    ],
)
def test_settings_are_flat_capped_scalars(settings: dict[str, Any], accepted: bool) -> None:
    message = enable_error(partner(settings=settings))
    assert (message is None) is accepted
    if message is not None:
        assert message.startswith("Malformed request: payload.settings must be a flat object")
        assert SECRET not in message and "k" * 64 not in message  # never a value, never a key
    in_list = lists(enabled=[on(C1, "A", settings=settings)])
    assert schema_error(payloads.SET_STATE, in_list) is None
    if accepted:
        payloads.check_set_state(in_list)
    else:
        with pytest.raises(PayloadError) as info:
            payloads.check_set_state(in_list)
        assert info.value.message.startswith("Malformed request: payload.enabled[0].settings must be a flat")


def test_settings_must_be_an_object() -> None:
    assert "payload.settings must be a JSON object" in str(enable_error(partner(settings=[1])))


@pytest.mark.parametrize(
    ("items", "fragment"),
    [
        ({}, "payload needs enabled or disabled"),
        (
            {"enabled": [on(C1, "A"), on(C1.upper(), "B")]},
            "payload.enabled[1].acronis_tenant_id appears twice",
        ),
        ({"disabled": [off(C1), off(C1)]}, "payload.disabled[1].acronis_tenant_id appears twice"),
        ({"enabled": [on(C1, "A")], "disabled": [off(C1)]}, "payload.disabled[0].acronis_tenant_id appears"),
    ],
)
def test_set_state_needs_a_list_and_every_id_once(items: dict[str, Any], fragment: str) -> None:
    payload = lists(**items)
    assert schema_error(payloads.SET_STATE, payload) is None
    with pytest.raises(PayloadError) as info:
        payloads.check_set_state(payload)
    assert fragment in info.value.message


@pytest.mark.parametrize(
    "items",
    [{"enabled": []}, {"disabled": []}, {"enabled": [on(C1, "A")], "disabled": [off(C2)]}],
)
def test_either_list_or_both_with_distinct_ids_are_accepted(items: dict[str, Any]) -> None:
    payload = lists(**items)
    assert schema_error(payloads.SET_STATE, payload) is None
    payloads.check_set_state(payload)


@pytest.mark.parametrize(
    ("schema", "payload", "fragment"),
    [
        (payloads.ENABLE, {"acronis_tenant_name": "R"}, "payload.acronis_tenant_id is required"),
        (payloads.ENABLE, {**partner(), "surprise": 1}, "payload.surprise is not allowed"),
        (payloads.ENABLE, partner(tenant="not-a-uuid"), "payload.acronis_tenant_id must be a UUID"),
        (payloads.SET_STATE, {"partner_tenant_id": P, "enabled": []}, "partner_tenant_name is required"),
        (payloads.SET_STATE, lists(enabled=[off(C1)]), "payload.enabled[0].acronis_tenant_name is required"),
        (payloads.SET_STATE, lists(disabled=[on(C1, "A")]), "payload.disabled[0].acronis_tenant_name is not"),
        (payloads.SET_STATE, lists(enabled=[on(C1, "A")] * 1001), "payload.enabled must have at most 1000"),
        (payloads.EMPTY, {"anything": 1}, "payload.anything is not allowed"),
    ],
)
def test_closed_objects_and_capped_lists(schema: Any, payload: dict[str, Any], fragment: str) -> None:
    assert fragment in str(schema_error(schema, payload))


def test_payload_less_callbacks_accept_an_empty_object() -> None:
    assert schema_error(payloads.EMPTY, {}) is None  # the absent payload is parsed as {}
