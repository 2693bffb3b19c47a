"""The callbacks section: mirroring needs the parent of mirrored partners, and an id that can be one."""

from __future__ import annotations

import pytest

from endpoint.callbacks.settings import CallbacksSettings


def test_defaults_are_off() -> None:
    assert CallbacksSettings() == CallbacksSettings(mirroring=False, mirrored_partners_parent="")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"mirroring": True}, "mirrored_partners_parent: required with mirroring on"),
        ({"mirrored_partners_parent": "not an id!"}, "must be an organization id"),
        ({"mirroring": True, "mirrored_partners_parent": "b9c1a52c-280e-45cd-be77-ba927fc42950"}, None),
    ],
)
def test_rules(fields: dict[str, object], error: str | None) -> None:
    if error is None:
        CallbacksSettings(**fields)  # type: ignore[arg-type]
        return
    with pytest.raises(ValueError, match=error):
        CallbacksSettings(**fields)  # type: ignore[arg-type]
