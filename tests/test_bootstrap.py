"""bootstrap.py: the connector command under its promised name; without a verb it is `connector init`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bootstrap
from endpoint.commands.cli import VERBS
from models import Consumer, db
from tests.support.builders import FAST_ARGON2


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "connector.toml"
    argon2 = "\n".join(f"{key} = {value}" for key, value in FAST_ARGON2.items())
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "c.db"}"\n[auth]\n{argon2}\n', encoding="utf-8"
    )
    yield path
    if not db.is_closed():
        db.close()


def test_without_a_verb_it_is_init(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--config", str(config), "--public-url", "https://c.example.com/"]
    argv += ["--instance-json", str(config.parent / "var" / "app_instance.json")]
    assert bootstrap.main(argv, {"CONNECTOR_ADMIN_PASSWORD": "admin-password-1"}) == 0
    assert "consumer key: connector-" in capsys.readouterr().out
    with db.connection_context():
        assert Consumer.select().count() == 1


def test_a_verb_anywhere_is_that_verb(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bootstrap.main(["--config", str(config), "migrate"], {}) == 0
    assert bootstrap.main(["list-keys", "--config", str(config)], {}) == 0
    assert "no consumer keys" in capsys.readouterr().out


def test_help_lists_every_verb(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        bootstrap.main(["--help"], {})
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: bootstrap.py")
    for verb in VERBS:
        assert f"\n    {verb} " in out


def test_tracked_template_holds_placeholders_only() -> None:
    template = json.loads((Path(bootstrap.__file__).parent / "app_instance.json").read_text())
    oauth = template["aps"]["auth"]["oauth"]
    assert oauth["key"].startswith("<") and oauth["secret"].startswith("<")
    assert template["aps"]["network"] == "proxy"
