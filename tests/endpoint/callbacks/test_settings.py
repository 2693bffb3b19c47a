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
        ({"mirrored_partners_parent": "root"}, r"must be an organization id \(a UUID\)"),
        (
            {"mirrored_partners_parent": "b9c1a52c-280e-45cd-be77-ba927fc42950\n"},
            "must be an organization id",
        ),
        ({"mirroring": True, "mirrored_partners_parent": "B9C1A52C-280E-45CD-BE77-BA927FC42950"}, None),
        ({"mirroring": True, "mirrored_partners_parent": "b9c1a52c-280e-45cd-be77-ba927fc42950"}, None),
    ],
)
def test_rules(fields: dict[str, object], error: str | None) -> None:
    if error is None:
        CallbacksSettings(**fields)  # type: ignore[arg-type]
        return
    with pytest.raises(ValueError, match=error):
        CallbacksSettings(**fields)  # type: ignore[arg-type]


def test_the_loader_names_the_setting_in_one_line() -> None:
    from endpoint.config.loader import ConfigError
    from endpoint.config.settings import load_settings

    with pytest.raises(ConfigError) as info:
        load_settings(None, {"CONNECTOR_CALLBACKS_MIRRORING": "true"})
    message = str(info.value)
    assert message.startswith("callbacks.mirrored_partners_parent: required with mirroring on")
    assert "\n" not in message
