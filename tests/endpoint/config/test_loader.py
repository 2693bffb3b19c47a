"""build_section / coerce: every supported type, and every problem as a ConfigError naming its key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from endpoint.config.loader import ConfigError, build_section, coerce


@dataclass(frozen=True)
class Range:
    low: float = 0.0
    high: float = 1.0


@dataclass(frozen=True)
class Sample:
    name: str = "sample"
    count: int = 1
    ratio: float = 0.5
    enabled: bool = False
    label: str | None = "default"
    limit: int | None = 10
    hosts: tuple[str, ...] = ()
    window: tuple[float, float] = (1.0, 2.0)
    range: Range = field(default_factory=Range)


@dataclass(frozen=True)
class Required:
    token_env: str
    retries: int = 3


@dataclass(frozen=True)
class Validated:
    retries: int = 3

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries: must be >= 0")


@pytest.mark.parametrize(
    ("raw", "hint", "expected"),
    [
        ("abc", str, "abc"),
        (5, str, "5"),
        ("42", int, 42),
        (" 7 ", int, 7),
        (3, int, 3),
        (4.0, int, 4),
        ("1.5", float, 1.5),
        (2, float, 2.0),
        (True, bool, True),
        ("yes", bool, True),
        ("On", bool, True),
        ("1", bool, True),
        ("true", bool, True),
        ("off", bool, False),
        ("NO", bool, False),
        ("0", bool, False),
        (" false ", bool, False),
        (None, int | None, None),
        ("", str | None, None),
        ("none", str | None, None),
        ("null", int | None, None),
        ("5", int | None, 5),
        ("text", str | None, "text"),
        (["a", "b"], tuple[str, ...], ("a", "b")),
        ("a, b ,c", tuple[str, ...], ("a", "b", "c")),
        ("", tuple[str, ...], ()),
        (["1", "2"], tuple[int, ...], (1, 2)),
        ([1, "2.5"], tuple[float, float], (1.0, 2.5)),
        ("3.05, 20", tuple[float, float], (3.05, 20.0)),
        ({"low": "0.25"}, Range, Range(low=0.25)),
    ],
)
def test_coerce_supported_types(raw: Any, hint: Any, expected: Any) -> None:
    value = coerce(raw, hint)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("raw", "hint", "message"),
    [
        (True, int, "expected an integer"),
        (False, int, "expected an integer"),
        (4.5, int, "expected an integer"),
        ("x", int, "invalid literal"),
        (True, float, "expected a number"),
        ("maybe", bool, "expected true or false"),
        ("", bool, "expected true or false"),
        ({"a": 1}, str, "expected a string"),
        ([1, 2, 3], tuple[float, float], "expected 2 values, got 3"),
        ("1", tuple[float, float], "expected 2 values, got 1"),
        (5, tuple[str, ...], "expected a list"),
        ("low=1", Range, "expected a table"),
    ],
)
def test_coerce_rejects(raw: Any, hint: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        coerce(raw, hint)


def test_coerce_refuses_an_unsupported_annotation() -> None:
    with pytest.raises(TypeError, match="unsupported setting type"):
        coerce("1", bytes)


def test_build_section_coerces_every_field() -> None:
    section = build_section(
        Sample,
        "sample",
        {
            "name": "n",
            "count": "3",
            "ratio": "0.75",
            "enabled": "yes",
            "label": "",
            "limit": "none",
            "hosts": "a.example, b.example",
            "window": [1, 2],
            "range": {"high": 5},
        },
    )
    assert section == Sample(
        "n", 3, 0.75, True, None, None, ("a.example", "b.example"), (1.0, 2.0), Range(0, 5)
    )


def test_build_section_keeps_defaults_for_absent_keys() -> None:
    assert build_section(Sample, "sample", {}) == Sample()


def test_unknown_key_names_section_key_and_lists_the_known_keys() -> None:
    with pytest.raises(ConfigError) as info:
        build_section(Sample, "sample", {"count": 2, "colour": "red"})
    message = str(info.value)
    assert message.startswith("sample.colour: unknown setting")
    assert "known: count, enabled, hosts, label, limit, name, range, ratio, window" in message


def test_missing_required_setting() -> None:
    with pytest.raises(ConfigError, match=r"^secrets\.token_env: required setting is missing$"):
        build_section(Required, "secrets", {"retries": 1})
    assert build_section(Required, "secrets", {"token_env": "TOKEN"}) == Required("TOKEN")


def test_a_bad_value_names_its_key() -> None:
    with pytest.raises(ConfigError, match=r"^sample\.window: expected 2 values, got 1$"):
        build_section(Sample, "sample", {"window": "1"})


def test_bool_given_to_an_int_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^sample\.count: expected an integer, got True$"):
        build_section(Sample, "sample", {"count": True})


def test_validator_value_error_gets_the_section_prefix() -> None:
    with pytest.raises(ConfigError, match=r"^retry\.retries: must be >= 0$"):
        build_section(Validated, "retry", {"retries": "-1"})


def test_a_bad_nested_table_still_fails() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        build_section(Sample, "sample", {"range": {"middle": 1}})


def test_a_nested_table_error_names_the_full_key_path() -> None:
    with pytest.raises(ConfigError, match=r"^sample\.range\.middle: unknown setting"):
        build_section(Sample, "sample", {"range": {"middle": 1}})
