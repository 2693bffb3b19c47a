"""VerifiedConsumer and AuthenticatedUser: frozen value objects with exactly their fields."""

from __future__ import annotations

import dataclasses

import pytest

from endpoint.auth.identity import AuthenticatedUser, VerifiedConsumer

CASES = [
    (VerifiedConsumer, {"key": "acme-0123456789", "secret_id": 2}),
    (
        AuthenticatedUser,
        {"user_id": "u-1", "login": "admin", "organization_id": "o-1", "organization_kind": "partner"},
    ),
]


@pytest.mark.parametrize(("cls", "values"), CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_fields_are_exactly_these(cls: type, values: dict[str, object]) -> None:
    assert [f.name for f in dataclasses.fields(cls)] == list(values)
    assert dataclasses.asdict(cls(**values)) == values


@pytest.mark.parametrize(("cls", "values"), CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_instances_are_frozen_and_closed(cls: type, values: dict[str, object]) -> None:
    instance = cls(**values)
    name = next(iter(values))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(instance, name, "changed")
    with pytest.raises((AttributeError, TypeError)):  # slots: no stray attributes either
        instance.extra = 1  # type: ignore[attr-defined]
    assert cls(**values) == instance and hash(cls(**values)) == hash(instance)
