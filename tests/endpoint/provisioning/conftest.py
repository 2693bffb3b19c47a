"""Fixtures of the bootstrap-action tests: a bootstrapped work directory and a runner for actions."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import bootstrap
from models import db
from models.db import DatabaseSettings
from tests.support.builders import FAST_ARGON2

PUBLIC = "https://connector.example.com/"
Run = Callable[..., int]


@pytest.fixture
def workdir(tmp_path: Path, db_settings: DatabaseSettings) -> Iterator[Path]:
    """A config on the suite's database backend, after ``bootstrap.py init`` ran once."""
    argon2 = "\n".join(f"{key} = {value}" for key, value in FAST_ARGON2.items())
    (tmp_path / "connector.toml").write_text(
        f'[database]\nurl = "{db_settings.url}"\n[auth]\n{argon2}\n', encoding="utf-8"
    )
    yield tmp_path
    if not db.is_closed():
        db.close()


@pytest.fixture
def action(workdir: Path) -> Run:
    """Run ``bootstrap.py [ACTION] ...`` in-process with the work directory's config and document."""

    def run(*argv: str, environ: dict[str, str] | None = None, instance_json: bool = True) -> int:
        extra = ["--instance-json", str(workdir / "var" / "app_instance.json")] if instance_json else []
        head, tail = (list(argv[:1]), list(argv[1:])) if argv else ([], [])
        return bootstrap.main(
            [*head, "--config", str(workdir / "connector.toml"), *extra, *tail], environ or {}
        )

    return run


@pytest.fixture
def initialized(workdir: Path, action: Run) -> Path:
    assert (
        bootstrap.main(
            [
                "--config",
                str(workdir / "connector.toml"),
                "--public-url",
                PUBLIC,
                "--instance-json",
                str(workdir / "var" / "app_instance.json"),
            ],
            {"CONNECTOR_ADMIN_PASSWORD": "admin-password-1"},
        )
        == 0
    )
    return workdir / "var" / "app_instance.json"


def read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
