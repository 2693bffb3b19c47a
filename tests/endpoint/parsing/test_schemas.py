"""Format checks, the schemas of both protocols, and the readable first-error message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fastjsonschema
import pytest
from jsonschema import Draft202012Validator

from endpoint.aps import payloads as aps
from endpoint.callbacks import schemas
from endpoint.callbacks.schemas import (
    EMPTY_PAYLOAD,
    ENABLEMENT_WRITE_PAYLOAD,
    ENVELOPE_SCHEMA,
    MAPPING_WRITE_PAYLOAD,
    USER_ID_PAYLOAD,
    USER_UPDATE_PAYLOAD,
    USER_WRITE_PAYLOAD,
)
from endpoint.parsing.schemas import (
    CTI_RE,
    CompiledSchema,
    compile_schema,
    first_error_message,
    is_https_url,
    is_rfc3339,
    is_uuid,
)
from tests.support.builders import DATACENTER
from tests.support.callback_builders import (
    ENDPOINT_ID,
    POSTMAN_CUSTOMER,
    POSTMAN_CUSTOMER_TENANT,
    POSTMAN_PARTNER,
    POSTMAN_PARTNER_TENANT,
    POSTMAN_USER,
    POSTMAN_USERS_TENANT,
    body,
    callback_id,
    context,
    request_type,
)

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
    validator: CompiledSchema, payload: dict[str, Any], message: str
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


# --- The compiled validator (fastjsonschema, draft 7) and jsonschema (2020-12) must agree -------------------

_APS_OBJECT = {"id": POSTMAN_USERS_TENANT, "type": "http://vendor.example/app/1.0"}
_APS_REF = {"aps": {"id": POSTMAN_CUSTOMER}}
_USERS_READ = "vendor.app.users_read.v1.0"
# (schema, valid instances): every schema compiled through compile_schema in the project.
VALID: dict[str, tuple[dict[str, Any], list[Any]]] = {
    "envelope": (
        ENVELOPE_SCHEMA,
        [
            body(),
            body(
                type=request_type(_USERS_READ),
                context=context(callback_id=callback_id(_USERS_READ), datacenter_url=None, extra="x"),
                payload={},
            ),
        ],
    ),
    "empty": (EMPTY_PAYLOAD, [{}]),
    "enablement": (
        ENABLEMENT_WRITE_PAYLOAD,
        [{"vendor_tenant_id": POSTMAN_PARTNER, "acronis_tenant_id": POSTMAN_PARTNER_TENANT}],
    ),
    "mapping": (
        MAPPING_WRITE_PAYLOAD,
        [
            {
                "modified": [
                    {"vendor_tenant_id": POSTMAN_CUSTOMER, "acronis_tenant_id": POSTMAN_CUSTOMER_TENANT},
                    {"vendor_tenant_id": POSTMAN_PARTNER, "acronis_tenant_id": ""},
                ]
            }
        ],
    ),
    "user_write": (USER_WRITE_PAYLOAD, [dict(POSTMAN_USER)]),
    "user_update": (USER_UPDATE_PAYLOAD, [{"id": POSTMAN_CUSTOMER, "name": "N", "email": "n@example.net"}]),
    "user_id": (USER_ID_PAYLOAD, [{"id": POSTMAN_CUSTOMER}]),
    "aps_app": (aps.APP_SCHEMA, [{"aps": dict(_APS_OBJECT), "setting": "x"}]),
    "aps_app_update": (aps.APP_UPDATE_SCHEMA, [{"aps": {"id": POSTMAN_CUSTOMER}}]),
    "aps_tenant": (
        aps.TENANT_SCHEMA,
        [
            {
                "aps": dict(_APS_OBJECT),
                "name": "Tenant",
                "account": _APS_REF,
                "USERS": {"limit": 5},
                "admin": {"login": "admin", "name": "Admin", "email": "a@example.net"},
            }
        ],
    ),
    "aps_tenant_update": (aps.TENANT_UPDATE_SCHEMA, [{"name": "T", "USERS": {"limit": None}}]),
    "aps_user": (
        aps.USER_SCHEMA,
        [{"aps": dict(_APS_OBJECT), "tenant": _APS_REF, **POSTMAN_USER}],
    ),
    "aps_user_update": (aps.USER_UPDATE_SCHEMA, [{"name": "N", "email": "n@example.net"}]),
    "aps_event": (
        aps.EVENT_SCHEMA,
        [{"event": "http://aps-standard.org/core/events/changed", "source": {"id": POSTMAN_CUSTOMER}}],
    ),
}
COMPILED = {name: compile_schema(schema) for name, (schema, _) in VALID.items()}

# Values put in place of every node of every valid instance: each type, the length and number limits on both
# sides, and valid and broken values of every format.
PROBES: list[Any] = [
    None, True, False, 0, -1, -2, 1.0, 2.5, 10**9, 10**9 + 1, float("inf"), float("nan"),
    "", " ", "x", "x" * 255, "x" * 256, "\u00e9" * 255, "\u00e9" * 256, "x" * 1024, "x" * 1025, "x" * 5000,
    POSTMAN_CUSTOMER, POSTMAN_CUSTOMER.upper(), POSTMAN_CUSTOMER + "\n", POSTMAN_CUSTOMER[:-1],
    request_type(_USERS_READ), request_type(_USERS_READ) + "\n", "cti.A.p.x.v1", ENDPOINT_ID,
    "2023-04-10T15:33:01Z", "2023-02-29T00:00:00Z", "2023-04-10", "\u0662023-04-10T15:33:01Z",
    DATACENTER, "http://eu8-cloud.acronis.com", "https://u@eu8-cloud.acronis.com", "https://h/?q=1",
    "a b", "a:b", "c@d", "c@d@e", "not-an-address", "x\ny", "\u2028", "\x7f", "\u540d\u524d",
    [], [1], [POSTMAN_CUSTOMER], {}, {"id": POSTMAN_CUSTOMER}, {"aps": {"id": POSTMAN_CUSTOMER}},
    {"limit": -1}, {"limit": 1.0}, {"limit": True}, {"vendor_tenant_id": POSTMAN_CUSTOMER},
]  # fmt: skip
EXTRA_FIELDS: list[dict[str, Any]] = [
    {"extra": "x"},
    {"extra": 1},
    {"extra": None},
    {"extra": {}},
    {"extra": "x" * 1025},
    {"<img src=x>": 1},
    {f"k{i}": "v" for i in range(200)},
]


def _nodes(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, node
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from _nodes(child, (*path, key))


def _replace(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = list(node) if isinstance(node, list) else dict(node)
    copy[path[0]] = _replace(node[path[0]], path[1:], value)
    return copy


def variants(instance: Any) -> Iterator[Any]:
    """The instance, then one change at each node: each probe, a field removed or added, a list too long."""
    yield instance
    for path, node in list(_nodes(instance)):
        for probe in PROBES:
            yield _replace(instance, path, probe)
        if isinstance(node, dict):
            for key in node:
                yield _replace(instance, path, {k: v for k, v in node.items() if k != key})
            for extra in EXTRA_FIELDS:
                yield _replace(instance, path, {**node, **extra})
        elif isinstance(node, list) and node:
            yield _replace(instance, path, node * 1001)
            yield _replace(instance, path, node * 500)


@pytest.mark.parametrize("name", VALID)
def test_compiled_validator_agrees_with_jsonschema(name: str) -> None:
    compiled = COMPILED[name]
    counts = {True: 0, False: 0}
    disagreements = []
    for instance in (variant for valid in VALID[name][1] for variant in variants(valid)):
        try:
            compiled.check(instance)
            fast_ok = True
        except fastjsonschema.JsonSchemaValueException:
            fast_ok = False
        slow_ok = compiled.validator.is_valid(instance)
        counts[slow_ok] += 1
        if fast_ok != slow_ok:
            disagreements.append((fast_ok, repr(instance)[:300]))
        message = first_error_message(compiled, instance, "payload")
        assert (message is None) is slow_ok
    assert disagreements == []
    assert counts[True] >= 2 and counts[False] >= 50, counts  # the table exercises both sides


@pytest.mark.parametrize("name", VALID)
def test_valid_input_never_runs_jsonschema(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("jsonschema ran on valid input")

    monkeypatch.setattr(Draft202012Validator, "iter_errors", refuse)
    monkeypatch.setattr(fastjsonschema, "compile", refuse)  # compiled once, not per call
    for instance in VALID[name][1]:
        assert first_error_message(COMPILED[name], instance, "payload") is None


def test_invalid_input_runs_jsonschema_for_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = Draft202012Validator.iter_errors

    def spy(self: Draft202012Validator, instance: object) -> Any:
        calls.append(instance)
        return original(self, instance)

    monkeypatch.setattr(Draft202012Validator, "iter_errors", spy)
    message = first_error_message(COMPILED["user_id"], {"id": "x"}, "payload")
    assert message == "Malformed request: payload.id must be a UUID."
    assert calls == [{"id": "x"}]


@pytest.mark.parametrize(("root", "where"), [("payload", "payload"), ("", "the body")])
def test_a_disagreement_is_refused_with_a_generic_message(
    root: str, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(instance: object) -> None:
        raise fastjsonschema.JsonSchemaValueException("compiled says no")

    disagreeing = CompiledSchema(check=refuse, validator=COMPILED["user_id"].validator)
    message = first_error_message(disagreeing, {"id": POSTMAN_CUSTOMER}, root)
    assert message == f"Malformed request: {where} is not valid."
    assert "disagree" not in message and any("jsonschema found no error" in r.message for r in caplog.records)


def test_compiling_leaves_the_source_schema_untouched() -> None:
    """fastjsonschema gets a copy pinned to draft 7; the schema jsonschema words errors with stays 2020-12."""
    compiled = compile_schema(ENVELOPE_SCHEMA)
    assert ENVELOPE_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert compiled.validator.schema is ENVELOPE_SCHEMA


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "format": "hostname"},  # fastjsonschema checks it, FORMAT_CHECKER does not
        {"type": "object", "properties": {"a": {"type": "string", "format": "uri"}}},
    ],
)
def test_formats_only_one_validator_knows_are_refused(schema: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="unknown formats"):
        compile_schema(schema)


def test_invalid_schemas_are_refused_at_compile_time() -> None:
    with pytest.raises(Exception, match="is not valid"):
        compile_schema({"type": "strin"})
