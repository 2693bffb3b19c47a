"""deploy/config.example.toml names every setting and loads as it stands."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from endpoint.config.settings import load_settings, section_types

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "config.example.toml"


def test_every_setting_is_documented() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    missing = []
    for section, cls in section_types().items():
        block = text.split(f"[{section}]\n", 1)[1].split("\n[", 1)[0]
        for field in dataclasses.fields(cls):
            if not re.search(rf"^#? ?{field.name}\b", block, re.MULTILINE):
                missing.append(f"{section}.{field.name}")
    assert missing == []


def test_example_loads() -> None:
    settings = load_settings(EXAMPLE, {})
    assert settings.endpoint.public_base_url == "https://connector.example.com/"
