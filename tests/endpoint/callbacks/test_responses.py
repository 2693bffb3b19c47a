"""Success and error envelopes: exactly the allowed fields, fresh response ids."""

from __future__ import annotations

import os
import uuid

import pytest

from endpoint.callbacks.responses import (
    error_envelope,
    error_type,
    response_id,
    success_envelope,
)
from endpoint.parsing.schemas import CTI_RE

REQUEST_ID = "7f1c2d9e-5b7a-4a61-9a8e-3c2b1d0e9f11"
NO_CONTENT = "cti.a.p.acgw.response.v1.0~a.p.success_no_content.v1.0"


def is_uuid4(value: str) -> bool:
    return uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value


def test_success_without_payload_leaves_the_key_out() -> None:
    body = success_envelope(REQUEST_ID, NO_CONTENT, None)
    assert set(body) == {"type", "request_id", "response_id"}
    assert body["type"] == NO_CONTENT and body["request_id"] == REQUEST_ID and is_uuid4(body["response_id"])


def test_success_with_payload_keeps_it_even_when_empty() -> None:
    body = success_envelope(REQUEST_ID, NO_CONTENT, {"items": []})
    assert body["payload"] == {"items": []}
    assert set(success_envelope(REQUEST_ID, NO_CONTENT, {})) == {
        "type",
        "request_id",
        "response_id",
        "payload",
    }


def test_response_ids_are_fresh() -> None:
    ids = {success_envelope(REQUEST_ID, NO_CONTENT, None)["response_id"] for _ in range(50)}
    ids |= {error_envelope(REQUEST_ID, "x", "vendor.app")["response_id"] for _ in range(50)}
    assert len(ids) == 100


def test_error_envelope_has_exactly_the_four_fields() -> None:
    body = error_envelope(REQUEST_ID, "User not found.", "vendor.app")
    assert list(body) == [
        "type",
        "request_id",
        "response_id",
        "err_message",
    ]  # never "message" (§12 defect 11)
    assert body["type"] == "cti.a.p.acgw.response.v1.0~vendor.app.error.v1.0"
    assert body["err_message"] == "User not found." and is_uuid4(body["response_id"])


def test_error_envelope_omits_an_unknown_request_id() -> None:
    body = error_envelope(None, "Malformed request: the body is not valid JSON.", "vendor.app")
    assert set(body) == {"type", "response_id", "err_message"}


@pytest.mark.parametrize("app_code", ["vendor.app", "acme.backup_cloud"])
def test_error_type_follows_the_app_code_and_is_a_cti(app_code: str) -> None:
    assert error_type(app_code) == f"cti.a.p.acgw.response.v1.0~{app_code}.error.v1.0"
    assert CTI_RE.fullmatch(error_envelope(None, "x", app_code)["type"])


GET_STATE_OK = "cti.a.p.acgw.response.v1.1~a.p.customer.mirroring.get_state.ok.v1.0"


def test_only_customer_get_state_answers_an_array() -> None:
    body = success_envelope(REQUEST_ID, GET_STATE_OK, [])
    assert body["payload"] == [] and set(body) == {"type", "request_id", "response_id", "payload"}
    with pytest.raises(TypeError):  # every other payload is an object (no top-level JSON arrays elsewhere)
        success_envelope(REQUEST_ID, "cti.a.p.acgw.response.v1.0~a.p.topology.read.ok.v1.0", [])
    with pytest.raises(TypeError):
        success_envelope(REQUEST_ID, GET_STATE_OK, {"items": []})
    assert "payload" not in success_envelope(REQUEST_ID, GET_STATE_OK, None)


def test_response_ids_are_uuid4_and_a_forked_worker_draws_its_own() -> None:
    """random, not os.urandom: safe only because the random module reseeds in every forked child."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first id, as a fresh worker would draw it
        os.write(write, response_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child, parent = os.read(read, 64).decode(), response_id()
    os.close(read)
    assert child != parent
    assert {uuid.UUID(child).version, uuid.UUID(parent).version} == {4}


def test_response_ids_are_rfc_4122_version_4_in_canonical_form() -> None:
    for _ in range(2000):  # every random bit pattern keeps the fixed version and variant bits
        value = response_id()
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, value)
