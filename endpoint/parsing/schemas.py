"""JSON Schema for request bodies of both protocols: our formats, shared field schemas, validators compiled
once, and readable error messages (the callback and APS schemas themselves live with their protocol)."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import fastjsonschema
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

log = logging.getLogger(__name__)

# Formats are checked with re.fullmatch and re.ASCII: jsonschema's "pattern" uses re.search, where "$" also
# matches before a trailing newline and "\d" matches non-ASCII digits.
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", re.ASCII)
_CTI_SEGMENT = r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_.]+\.v\d+(?:\.\d+){0,2}"
# The pattern the public Postman collection validates every `type` against (acronis-callbacks.md §8).
CTI_RE = re.compile(rf"cti\.{_CTI_SEGMENT}(?:~{_CTI_SEGMENT})*(?:~{UUID_RE.pattern})?", re.ASCII)
_RFC3339_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:[Zz]|[+-](\d{2}):(\d{2}))", re.ASCII
)
# C0/C1 controls and the Unicode line separators: nothing we store or echo may carry them (log injection).
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_LOGIN_RE = re.compile(r"[^\s:\x00-\x1f\x7f-\x9f]+")  # ":" would split X-CyberApp-Auth at the wrong place
_EMAIL_RE = re.compile(r"[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@\x00-\x1f\x7f-\x9f]+")
_SAFE_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,40}", re.ASCII)
_MAX_FORMATTED = 1024

FORMAT_CHECKER = FormatChecker(formats=())


def _strings_only(check: Callable[[str], object]) -> Callable[[object], bool]:
    def wrapper(value: object) -> bool:
        # jsonschema runs every keyword, so "format" also sees values that already failed "maxLength":
        # cap the input before any regex runs.
        return not isinstance(value, str) or (len(value) <= _MAX_FORMATTED and bool(check(value)))

    return wrapper


def is_uuid(value: str) -> bool:
    return UUID_RE.fullmatch(value) is not None


def is_rfc3339(value: str) -> bool:
    match = _RFC3339_RE.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second, off_h, off_m = (int(g) if g else 0 for g in match.groups())
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return hour <= 23 and minute <= 59 and second <= 60 and off_h <= 23 and off_m <= 59


def is_https_url(value: str) -> bool:
    if _CONTROL_RE.search(value) or " " in value:
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and bool(parts.hostname)
        and not (parts.username or parts.password or parts.query or parts.fragment)
    )


def is_text(value: str) -> bool:
    return bool(value.strip()) and _CONTROL_RE.search(value) is None


def _is_cti(value: str) -> bool:
    return CTI_RE.fullmatch(value) is not None


# Every request repeats the same few CTI identifiers (type, callback, endpoint) and datacenter URL:
# remembered, their checks cost a dict lookup (~1.5 % of a callback's CPU). Bounded, and values are
# capped at _MAX_FORMATTED characters before any check, so a flood of distinct values costs ~1 MiB.
_is_cti_cached = functools.lru_cache(maxsize=512)(_is_cti)
_is_https_url_cached = functools.lru_cache(maxsize=512)(is_https_url)

# One set of checks for both validators: jsonschema's FORMAT_CHECKER and fastjsonschema's formats=.
FORMATS: dict[str, Callable[[object], bool]] = {
    _name: _strings_only(_check)
    for _name, _check in {
        "uuid": is_uuid,
        "uuid-or-empty": lambda v: v == "" or is_uuid(v),
        "cti": _is_cti_cached,
        "date-time": is_rfc3339,
        "https-url": _is_https_url_cached,
        "text": is_text,
        "login": lambda v: _LOGIN_RE.fullmatch(v) is not None,
        "email": lambda v: _EMAIL_RE.fullmatch(v) is not None,
    }.items()
}
for _name, _check in FORMATS.items():
    FORMAT_CHECKER.checks(_name)(_check)

_FORMAT_REASONS = {
    "uuid": "must be a UUID",
    "uuid-or-empty": "must be a UUID or empty",
    "cti": "must be a CTI identifier",
    "date-time": "must be an RFC 3339 date-time",
    "https-url": "must be an https:// URL without credentials, query or fragment",
    "text": "must be non-blank text without control characters",
    "login": "must not contain spaces, ':' or control characters",
    "email": "must be an e-mail address",
}


# Keyword order matters: validation stops at the first error (see first_error_message), so every schema lists
# the plainest checks first: type, then size, then format; required/additionalProperties before children.
def formatted_string(fmt: str, max_length: int, min_length: int = 0) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if min_length:
        schema["minLength"] = min_length
    return {**schema, "maxLength": max_length, "format": fmt}


UUID = {"type": "string", "format": "uuid"}  # the format fixes the length; its message is the useful one
CTI = formatted_string("cti", 255)
NAME = formatted_string("text", 255, min_length=1)
EMAIL = formatted_string("email", 254, min_length=3)
LOGIN = formatted_string("login", 255, min_length=1)


def closed_object(properties: Mapping[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A closed object: unknown fields are refused (mass assignment, security-checklist item 39)."""
    return {
        "type": "object",
        "required": list(required),
        "additionalProperties": False,
        "properties": dict(properties),
    }


# fastjsonschema implements drafts 4-7: our schemas use only keywords whose meaning is the same in draft 7 and
# 2020-12 (type, required, properties, additionalProperties, items as one schema, min/max*, format), so the
# compiled copy is pinned to draft 7; tests/endpoint/parsing/test_schemas.py proves both agree.
_DRAFT_7 = "http://json-schema.org/draft-07/schema#"


@dataclass(frozen=True, slots=True)
class CompiledSchema:
    """``check``: fastjsonschema's generated function (raises on invalid input), run on every request;
    ``validator``: jsonschema's, run only on input ``check`` refused, to name the first error."""

    check: Callable[[object], object]
    validator: Draft202012Validator


def _formats_in(schema: object) -> Iterator[object]:
    if isinstance(schema, Mapping):
        if "format" in schema and not isinstance(schema["format"], Mapping):
            yield schema["format"]
        for value in schema.values():
            yield from _formats_in(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _formats_in(value)


def compile_schema(schema: Mapping[str, Any]) -> CompiledSchema:
    """Both validators for ``schema``, compiled once, with our format checks switched on."""
    Draft202012Validator.check_schema(schema)
    # fastjsonschema has built-in formats (hostname, uri...) that FORMAT_CHECKER lacks: refuse them so that
    # both validators check exactly the same formats.
    unknown = {str(fmt) for fmt in _formats_in(schema)} - FORMATS.keys()
    if unknown:
        raise ValueError(f"unknown formats: {sorted(unknown)}")
    check = fastjsonschema.compile({**schema, "$schema": _DRAFT_7}, formats=FORMATS, use_default=False)
    return CompiledSchema(check, Draft202012Validator(schema, format_checker=FORMAT_CHECKER))


def _path(root: str, error: ValidationError, child: str | None) -> str:
    text = root
    for part in [*error.absolute_path, *([child] if child else [])]:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            # Keys come from the client: name them only when short and plain.
            name = part if _SAFE_NAME_RE.fullmatch(part) else "<field>"
            text = f"{text}.{name}" if text else name
    return text or "the body"


def _reason(error: ValidationError) -> tuple[str, str | None]:
    """(reason, child field name or None) for one error, without ever quoting the offending value."""
    keyword, value, instance = error.validator, error.validator_value, error.instance
    if keyword == "required" and isinstance(instance, dict):
        missing = next((name for name in value if name not in instance), "field")
        return "is required", missing
    if keyword == "additionalProperties" and isinstance(instance, dict):
        known = error.schema.get("properties", {})
        extra = next((k for k in instance if k not in known), None)
        if extra is not None and _SAFE_NAME_RE.fullmatch(extra):
            return "is not allowed", extra
        return "has an unexpected field", None
    if keyword == "format":
        return _FORMAT_REASONS.get(str(value), "has an invalid format"), None
    if keyword == "type":
        kinds = value if isinstance(value, list) else [value]
        listed = kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " or " + kinds[-1]
        return f"must be a JSON {listed}", None
    simple = {
        "maxLength": f"must be at most {value} characters",
        "minLength": "must not be empty" if value == 1 else f"must be at least {value} characters",
        "maxItems": f"must have at most {value} items",
        "maxProperties": f"must have at most {value} fields",
    }
    return simple.get(str(keyword), "is not valid"), None


def first_error_message(compiled: CompiledSchema, instance: object, root: str) -> str | None:
    """None when ``instance`` (json.loads output) is valid, else "Malformed request: <path> <reason>.".

    Valid input costs one call of the compiled function. Invalid input then runs jsonschema for its first
    error only: errors are generated lazily, so a 1 MiB payload that breaks a size limit costs one check, not
    one per item (validation runs on the event loop).
    """
    try:
        compiled.check(instance)
        return None
    except fastjsonschema.JsonSchemaValueException:
        pass
    error = next(iter(compiled.validator.iter_errors(instance)), None)
    if error is None:  # the validators disagree: never accept what either refuses
        log.error("fastjsonschema refused %s but jsonschema found no error", root or "the body")
        return f"Malformed request: {root or 'the body'} is not valid."
    reason, child = _reason(error)
    return f"Malformed request: {_path(root, error, child)} {reason}."
