"""list-keys: keys, secret ids, ages and expiry; never a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.endpoint.provisioning.conftest import Run, read


def test_the_listing_never_shows_a_secret(
    initialized: Path, action: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    assert action("rotate-key") == 0
    secret = read(initialized)["aps"]["auth"]["oauth"]["secret"]
    key = read(initialized)["aps"]["auth"]["oauth"]["key"]
    capsys.readouterr()
    assert action("list-keys", instance_json=False) == 0
    out = capsys.readouterr().out
    assert key in out and "no instance yet" in out
    assert "secret #1: age" in out and "active, expires in 23h 59m" in out
    assert "secret #2: age" in out and "active, no expiry" in out
    assert secret not in out


def test_an_empty_database(workdir: Path, action: Run, capsys: pytest.CaptureFixture[str]) -> None:
    assert action("list-keys", instance_json=False) == 0
    assert "no consumer keys" in capsys.readouterr().out
