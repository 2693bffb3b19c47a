"""The simulator's command line: its commands, and clean failures without an instance document."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.controller.cli import COMMANDS, WITHOUT_INSTANCE, main
from simulators.controller.scenarios import SCENARIOS


def test_commands() -> None:
    assert set(COMMANDS) == {"callback", "scenario", "serve"}
    assert WITHOUT_INSTANCE == {"serve"}


def test_a_missing_instance_document_is_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--instance", str(tmp_path / "missing.json"), "scenario", "create-instance"]
    assert main(argv) == 2
    assert "missing.json" in capsys.readouterr().err


def test_scenario_help_lists_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["scenario", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in SCENARIOS)
