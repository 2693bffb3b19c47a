"""``scenario NAME``: tenant ids kept in the state file, a summary line, the exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulators.gateway.cli import main
from tests.simulators.gateway.conftest import Served
from tests.simulators.gateway.fake_cyberapp import LOGIN, PASSWORD


def test_mirroring_keeps_its_tenants_between_runs(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "nested" / "state.json"
    argv = [
        "--url",
        served.url,
        "--keys-dir",
        str(served.keys_dir),
        "scenario",
        "mirroring",
        "--state",
        str(state),
    ]
    assert main(argv) == 0
    assert capsys.readouterr().out.endswith("mirroring: 11/11 steps as expected\n")
    kept = json.loads(state.read_text())
    assert main(argv) == 0
    assert json.loads(state.read_text())["mirrored_partner_tenant"] == kept["mirrored_partner_tenant"]


def test_mapping_with_credentials_from_the_environment(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GW_PASSWORD", PASSWORD)
    argv = [
        *("--url", served.url, "--keys-dir", str(served.keys_dir)),
        *("scenario", "mapping", "--state", str(tmp_path / "s.json")),
        *("--login", LOGIN, "--password-env", "GW_PASSWORD"),
    ]
    assert main(argv) == 0 and "mapping: 12/12 steps as expected" in capsys.readouterr().out


def test_a_failing_step_is_exit_status_1(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "s.json"
    argv = ["--url", served.url, "--keys-dir", str(served.keys_dir), "scenario", "mapping"]
    assert main([*argv, "--state", str(state)]) == 1  # no credentials
    assert "mapping: 0/1 steps as expected" in capsys.readouterr().out
