"""list-keys: keys, secret ids, ages and expiry; never a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

import bootstrap
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
    assert action("migrate", instance_json=False) == 0
    assert action("list-keys", instance_json=False) == 0
    assert "no consumer keys: run `connector init`" in capsys.readouterr().out


def test_a_missing_sqlite_file_is_named_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo" / "connector.db"
    assert bootstrap.main(["list-keys", "--db", f"sqlite:///{missing}"], {}) == 1
    err = capsys.readouterr().err
    assert err.startswith("bootstrap.py list-keys: database.url (sqlite:///")
    assert "does not exist: run `connector init` first" in err and err.count("\n") == 1
    assert not missing.parent.exists()
