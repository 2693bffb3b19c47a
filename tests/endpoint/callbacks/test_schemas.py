"""Format checks, payload schemas and the readable first-error message."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from endpoint.callbacks import schemas
from endpoint.callbacks.schemas import (
    CTI_RE,
    ENABLEMENT_WRITE_PAYLOAD,
    ENVELOPE_SCHEMA,
    MAPPING_WRITE_PAYLOAD,
    USER_UPDATE_PAYLOAD,
    USER_WRITE_PAYLOAD,
    compile_schema,
    first_error_message,
    is_https_url,
    is_rfc3339,
    is_uuid,
)
from tests.endpoint.callbacks import POSTMAN_CUSTOMER, POSTMAN_CUSTOMER_TENANT, POSTMAN_USERS_TENANT

ENABLEMENT = compile_schema(ENABLEMENT_WRITE_PAYLOAD)
MAPPING = compile_schema(MAPPING_WRITE_PAYLOAD)
USER_WRITE = compile_schema(USER_WRITE_PAYLOAD)
USER_UPDATE = compile_schema(USER_UPDATE_PAYLOAD)


@pytest.mark.parametrize(
    "schema",
    [value for name, value in vars(schemas).items() if name.endswith(("_SCHEMA", "_PAYLOAD"))],
)
def test_every_schema_is_valid_draft_2020_12(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    if schema is not ENVELOPE_SCHEMA:
        assert schema["additionalProperties"] is False  # mass assignment (security-checklist item 39)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (POSTMAN_USERS_TENANT, True),
        ("0DD47BBB-D065-447F-AB7C-06E05887078B", True),
        ("0dd47bbbd065447fab7c06e05887078b", False),
        ("{0dd47bbb-d065-447f-ab7c-06e05887078b}", False),
        ("0dd47bbb-d065-447f-ab7c-06e05887078b\n", False),
        ("0dd47bbb-d065-447f-ab7c-06e05887078", False),
        ("r", False),
    ],
)
def test_uuid_format(value: str, ok: bool) -> None:
    assert is_uuid(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2023-04-10T15:33:01+00:00", True),
        ("0001-01-01T00:00:00Z", True),
        ("2024-02-29T23:59:60.5-05:30", True),
        ("2023-04-10 15:33:01Z", True),
        ("2023-02-29T00:00:00Z", False),
        ("2023-04-10T24:00:00Z", False),
        ("2023-04-10T15:33:01+24:00", False),
        ("2023-04-10T15:33:01", False),
        ("2023-04-10", False),
        ("2023-04-10T15:33:01Z\n", False),
        ("\u0662023-04-10T15:33:01Z", False),
    ],
)
def test_rfc3339_format(value: str, ok: bool) -> None:
    assert is_rfc3339(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("https://eu8-cloud.acronis.com", True),
        ("https://eu8-cloud.acronis.com:8443/path/", True),
        ("http://eu8-cloud.acronis.com", False),
        ("https://user@eu8-cloud.acronis.com", False),
        ("https://eu8-cloud.acronis.com/?q=1", False),
        ("https://eu8-cloud.acronis.com/#f", False),
        ("https://eu8-cloud.acronis.com:99999", False),
        ("https:///path", False),
        ("https://eu8-cloud.acronis.com/\nX-Injected: 1", False),
        ("javascript:alert(1)", False),
    ],
)
def test_https_url_format(value: str, ok: bool) -> None:
    assert is_https_url(value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("cti.a.p.acgw.request.v1.0~a.p.empty.v1.0", True),
        ("cti.a.p.acgw.callback.v2.0~a.p.partner.mirroring.get_state.v1.0", True),
        ("cti.a.p.acgw.response.v1.0~vendor.app.error.v1.0", True),
        ("cti.a.p.acgw.request.v1.0~a.p.empty.v1.0~" + POSTMAN_USERS_TENANT, True),
        ("cti.a.p.acgw.request.v1~a.p.empty.v1", True),
        ("cti.A.p.acgw.request.v1.0", False),
        ("a.p.acgw.request.v1.0", False),
        ("cti.a.p.acgw.request.v1.0.0.0", False),
        ("cti.a.p.acgw.request.v1.0~", False),
        ("cti.a.p.acgw.request.v1.0\n", False),
        ("cti.a.p.acgw.request.v\u0661.0", False),
    ],
)
def test_cti_pattern_from_the_postman_collection(value: str, ok: bool) -> None:
    assert (CTI_RE.fullmatch(value) is not None) is ok


@pytest.mark.parametrize(
    ("validator", "payload", "message"),
    [
        (ENABLEMENT, {"vendor_tenant_id": POSTMAN_CUSTOMER}, "payload.acronis_tenant_id is required"),
        (
            ENABLEMENT,
            {"vendor_tenant_id": POSTMAN_CUSTOMER, "acronis_tenant_id": "x"},
            "payload.acronis_tenant_id must be a UUID",
        ),
        (
            ENABLEMENT,
            {"vendor_tenant_id": 5, "acronis_tenant_id": POSTMAN_CUSTOMER},
            "payload.vendor_tenant_id must be a JSON string",
        ),
        (MAPPING, {}, "payload.modified is required"),
        (MAPPING, {"modified": {}}, "payload.modified must be a JSON array"),
        (
            MAPPING,
            {
                "modified": [{"vendor_tenant_id": POSTMAN_CUSTOMER}] * 2
                + [{"vendor_tenant_id": POSTMAN_CUSTOMER, "acronis_tenant_id": "z"}]
            },
            "payload.modified[2].acronis_tenant_id must be a UUID or empty",
        ),
        (
            MAPPING,
            {"modified": [{"acronis_tenant_id": POSTMAN_CUSTOMER_TENANT}]},
            "payload.modified[0].vendor_tenant_id is required",
        ),
        (
            MAPPING,
            {"modified": [{"vendor_tenant_id": POSTMAN_CUSTOMER}] * 1001},
            "payload.modified must have at most 1000 items",
        ),
        (
            USER_WRITE,
            {"login": "a", "name": "b", "email": "c@d", "organization_id": "x"},
            "payload.organization_id is not allowed",
        ),
        (
            USER_WRITE,
            {"login": "a", "name": "b", "email": "c@d", "is_admin": True},
            "payload.is_admin is not allowed",
        ),
        (
            USER_WRITE,
            {"login": "a:b", "name": "b", "email": "c@d"},
            "payload.login must not contain spaces, ':' or control characters",
        ),
        (
            USER_WRITE,
            {"login": "a b", "name": "b", "email": "c@d"},
            "payload.login must not contain spaces, ':' or control characters",
        ),
        (USER_WRITE, {"login": "", "name": "b", "email": "c@d"}, "payload.login must not be empty"),
        (
            USER_WRITE,
            {"login": "a", "name": "   ", "email": "c@d"},
            "payload.name must be non-blank text without control characters",
        ),
        (
            USER_WRITE,
            {"login": "a", "name": "x\ny", "email": "c@d"},
            "payload.name must be non-blank text without control characters",
        ),
        (
            USER_WRITE,
            {"login": "a", "name": "x" * 256, "email": "c@d"},
            "payload.name must be at most 255 characters",
        ),
        (
            USER_WRITE,
            {"login": "a", "name": "b", "email": "not-an-address"},
            "payload.email must be an e-mail address",
        ),
        (USER_UPDATE, {"id": "1", "name": "b", "email": "c@d"}, "payload.id must be a UUID"),
    ],
)
def test_first_error_message_names_path_and_reason(
    validator: Draft202012Validator, payload: dict[str, Any], message: str
) -> None:
    assert first_error_message(validator, payload, "payload") == f"Malformed request: {message}."


def test_unknown_field_names_are_sanitized() -> None:
    message = first_error_message(
        USER_WRITE, {"login": "a", "name": "b", "email": "c@d", "<img src=x>": 1}, "payload"
    )
    assert message == "Malformed request: payload has an unexpected field."


def test_offending_values_are_never_quoted() -> None:
    message = first_error_message(
        USER_UPDATE, {"id": "SECRET" * 1000, "name": "b", "email": "c@d"}, "payload"
    )
    assert message is not None and "SECRET" not in message


@pytest.mark.parametrize(
    "payload",
    [
        {"login": "o'brien;--", "name": "Robert'); DROP TABLE user;--", "email": "o'brien%_@example.com"},
        {"login": "a\\b%_", "name": 'x";', "email": "a@b"},
        {"login": "Ünïcode", "name": "名前", "email": "ü@例え.jp"},
    ],
)
def test_sql_like_and_unicode_values_are_valid(payload: dict[str, Any]) -> None:
    assert first_error_message(USER_WRITE, payload, "payload") is None


def test_valid_payloads_give_no_message() -> None:
    assert first_error_message(MAPPING, {"modified": []}, "payload") is None
    mapping = {"modified": [{"vendor_tenant_id": POSTMAN_CUSTOMER, "acronis_tenant_id": ""}]}
    assert first_error_message(MAPPING, mapping, "payload") is None
