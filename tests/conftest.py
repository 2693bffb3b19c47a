"""Suite-wide fixtures: proxy-environment isolation, a scratch database, settings, a signer."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import peewee as pw
import pytest

from models import db, init_database, migrate
from models.db import DatabaseSettings
from tests.support.databases import (
    SharedDatabase,
    scratch_database,
    selected_backend,
    shared_database,
    unreachable_reason,
)
from tests.support.proxy_variables import clear_proxy_environ

# The addon tests import mitmproxy, which lives only in .venv-mitm (scripts/test runs them there).
collect_ignore = ["proxy/mitm"]


@pytest.fixture(autouse=True)
def clean_proxy_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may depend on (or leak into) the machine's proxy and CA environment."""
    clear_proxy_environ(monkeypatch)


@pytest.fixture(scope="session")
def server_database() -> Iterator[SharedDatabase | str | None]:
    """The session's migrated server database; None on SQLite, the reason when the server is unreachable."""
    backend = selected_backend()
    if backend == "sqlite":
        yield None
        return
    reason = unreachable_reason(backend)
    if reason:
        yield reason
        return
    with shared_database(backend) as shared:
        yield shared


@pytest.fixture
def db_settings(tmp_path: Path, server_database: SharedDatabase | str | None) -> DatabaseSettings:
    """An empty database on the suite's backend (CONNECTOR_TEST_DATABASE, default sqlite).

    SQLite: a new file per test (not migrated). Servers: the session's shared database, migrated, with
    every table emptied and every id sequence restarted before the test.
    """
    if isinstance(server_database, str):
        pytest.skip(server_database)
    if server_database is None:
        return DatabaseSettings(url=f"sqlite:///{tmp_path / 'connector.db'}")
    server_database.reset()
    return server_database.settings


@pytest.fixture
def own_db_settings(tmp_path: Path) -> Iterator[DatabaseSettings]:
    """A database of the test's own, created empty and never migrated (schema and migration tests)."""
    backend = selected_backend()
    reason = unreachable_reason(backend)
    if reason:
        pytest.skip(reason)
    with scratch_database(backend, tmp_path) as settings:
        yield settings


@pytest.fixture
def database(db_settings: DatabaseSettings) -> Iterator[pw.Database]:
    """The shared proxy bound to a migrated scratch database, with a connection open for the test."""
    bound = init_database(db_settings)
    migrate(bound)
    bound.connect(reuse_if_open=True)
    try:
        yield bound
    finally:
        if not bound.is_closed():
            bound.close()
        bound.close_all()


@pytest.fixture
def tmp_env(tmp_path: Path) -> dict[str, str]:
    """A minimal environment for subprocesses: PATH and HOME only (no proxy or CA variables)."""
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LANG": "C.UTF-8"}


__all__ = ["db"]
