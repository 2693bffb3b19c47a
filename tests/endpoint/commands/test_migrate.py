"""``python -m endpoint migrate`` as a real process: applies every version once, then nothing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from models import MIGRATIONS

ROOT = Path(__file__).resolve().parents[3]


def run_migrate(db_path: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "endpoint", "migrate", "--db", f"sqlite:///{db_path}"],
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_migrate_applies_every_version_then_nothing(tmp_path: Path, tmp_env: dict[str, str]) -> None:
    db_path = tmp_path / "state" / "connector.db"
    versions = ", ".join(str(m.version) for m in MIGRATIONS)

    first = run_migrate(db_path, tmp_env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"schema up to date (applied: {versions})\n"
    with sqlite3.connect(db_path) as conn:
        recorded = [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    assert recorded == [m.version for m in MIGRATIONS]

    second = run_migrate(db_path, tmp_env, tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout == "schema up to date (applied: nothing)\n"


def test_a_bad_database_url_exits_2(tmp_path: Path, tmp_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "endpoint", "migrate", "--db", "oracle://db/x"],
        env={**tmp_env, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "database.url" in result.stderr and "Traceback" not in result.stderr
