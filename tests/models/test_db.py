"""Database binding: settings validation, the SQLite pragmas and write lock, pools, unique violations."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import peewee as pw
import pytest
from playhouse.pool import PooledMySQLDatabase, PooledPostgresqlDatabase

from models import db, init_database
from models.backends import ServerMySQLDatabase, ServerPostgresqlDatabase
from models.db import (
    DatabaseSettings,
    open_database,
    release_connection,
    serialized_write,
    unit_of_work,
)
from models.sqlite import SerializedSqliteDatabase
from tests.support.databases import scratch_database, unreachable_reason


@pytest.fixture
def restore_proxy() -> Iterator[None]:
    saved = db.obj
    yield
    db.initialize(saved)


def sqlite_settings(tmp_path: Path, **fields: object) -> DatabaseSettings:
    return DatabaseSettings(url=f"sqlite:///{tmp_path / 'c.db'}", **fields)  # type: ignore[arg-type]


def in_thread(fn: Callable[[], object]) -> object:
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(fn()))
    thread.start()
    thread.join(5)
    return result[0]


# -- DatabaseSettings ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({}, None),
        ({"url": "sqlite+pool:///x.db"}, None),
        ({"url": "postgres://u@h/d"}, None),
        ({"url": "mysql://u@h/d", "sqlite_synchronous": "full"}, None),
        ({"url": "oracle://u@h/d"}, "url: unsupported scheme 'oracle'"),
        ({"url": "/var/connector.db"}, "url: unsupported scheme ''"),
        ({"max_connections": 1}, None),
        ({"max_connections": 0}, "max_connections: must be >= 1"),
        ({"pool_timeout": 0}, "pool_timeout: must be > 0"),
        ({"pool_timeout": -1.0}, "pool_timeout: must be > 0"),
        ({"sqlite_synchronous": "off"}, "sqlite_synchronous: must be one of normal, full"),
        ({"sqlite_synchronous": "NORMAL"}, "sqlite_synchronous"),
    ],
)
def test_settings_validation(fields: dict[str, object], error: str | None) -> None:
    if error is None:
        DatabaseSettings(**fields)  # type: ignore[arg-type]
    else:
        with pytest.raises(ValueError, match=error):
            DatabaseSettings(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("sqlite:///c.db", "sqlite"),
        ("sqlite+pool:///c.db", "sqlite"),
        ("postgres://u@h/d", "postgresql"),
        ("postgresql+pool://u@h/d", "postgresql"),
        ("mysql://u@h/d", "mysql"),
    ],
)
def test_backend(url: str, backend: str) -> None:
    assert DatabaseSettings(url=url).backend == backend


# -- SQLite ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "value"), [("normal", 1), ("full", 2)])
def test_sqlite_pragmas(tmp_path: Path, mode: str, value: int) -> None:
    database = open_database(sqlite_settings(tmp_path, sqlite_synchronous=mode))
    assert isinstance(database, SerializedSqliteDatabase)
    with database.connection_context():

        def pragma(name: str) -> object:
            return database.execute_sql(f"PRAGMA {name}").fetchone()[0]

        assert pragma("journal_mode") == "wal"
        assert pragma("synchronous") == value
        assert pragma("foreign_keys") == 1
        assert pragma("busy_timeout") == 5000
    database.close_all()


def test_sqlite_pool_settings(tmp_path: Path) -> None:
    database = open_database(sqlite_settings(tmp_path, max_connections=3, pool_timeout=2.5))
    assert (database._max_connections, database._wait_timeout) == (3, 2.5)


def test_directories_are_created_owner_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a' / 'b' / 'c.db'}"
    open_database(DatabaseSettings(url=url))
    assert (tmp_path / "a" / "b").is_dir()
    assert (tmp_path / "a" / "b").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "a" / "b" / "c.db").stat().st_size == 0  # created empty (SQLite: a new database)


def test_a_new_database_and_its_wal_files_are_owner_only(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # the usual umask would make them 0644
    try:
        database = init_database(sqlite_settings(tmp_path))
        with database.connection_context():
            database.execute_sql("CREATE TABLE t (x INTEGER)")
            database.execute_sql("INSERT INTO t VALUES (1)")
            files = sorted(p.name for p in tmp_path.iterdir())
            modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    finally:
        os.umask(old_umask)
    assert files == ["c.db", "c.db-shm", "c.db-wal"]
    assert set(modes.values()) == {0o600}, modes


def test_an_existing_readable_database_is_kept_but_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "connector.db"
    path.write_bytes(b"")
    path.chmod(0o644)
    with caplog.at_level("WARNING", logger="models.db"):
        open_database(DatabaseSettings(url=f"sqlite:///{path}"))
    assert path.stat().st_mode & 0o777 == 0o644  # never changed behind the operator's back
    [record] = caplog.records
    assert "mode 644" in record.getMessage() and f"chmod 600 {path}" in record.getMessage()
    caplog.clear()
    path.chmod(0o600)
    with caplog.at_level("WARNING", logger="models.db"):
        open_database(DatabaseSettings(url=f"sqlite:///{path}"))
    assert caplog.records == []


def test_three_slashes_is_relative_four_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert open_database(DatabaseSettings(url="sqlite:///rel/c.db")).database == "rel/c.db"
    assert (tmp_path / "rel").is_dir()
    assert (
        open_database(DatabaseSettings(url=f"sqlite:///{tmp_path}/abs.db")).database == f"{tmp_path}/abs.db"
    )


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://"])
def test_in_memory(url: str) -> None:
    assert open_database(DatabaseSettings(url=url)).database == ":memory:"


def test_atomic_holds_the_write_lock(tmp_path: Path) -> None:
    database = open_database(sqlite_settings(tmp_path))
    lock = database.write_lock
    try:
        with database.atomic():
            assert in_thread(lambda: lock.acquire(blocking=False)) is False
            with database.atomic():  # re-entrant in the same thread (savepoint)
                pass
            assert in_thread(lambda: lock.acquire(blocking=False)) is False
        with pytest.raises(ValueError), database.atomic():
            raise ValueError("roll back")
        assert lock.acquire(blocking=False)  # released after commit and after rollback alike
        lock.release()
    finally:
        database.close_all()


def test_a_second_threads_atomic_waits(tmp_path: Path) -> None:
    database = open_database(sqlite_settings(tmp_path))
    events: list[str] = []
    inside = threading.Event()

    def first() -> None:
        with database.connection_context(), database.atomic():
            inside.set()
            time.sleep(0.2)
            events.append("first leaves")

    def second() -> None:
        inside.wait(5)
        with database.connection_context(), database.atomic():
            events.append("second enters")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    database.close_all()
    assert events == ["first leaves", "second enters"]


def test_serialized_write_takes_the_lock_of_the_bound_database(tmp_path: Path, restore_proxy: None) -> None:
    database = init_database(sqlite_settings(tmp_path))
    with serialized_write():
        assert in_thread(lambda: database.write_lock.acquire(blocking=False)) is False
    assert in_thread(lambda: database.write_lock.acquire(blocking=False)) is True


def test_serialized_write_runs_the_statement_without_a_write_lock(restore_proxy: None) -> None:
    database = pw.SqliteDatabase(":memory:")  # e.g. a server backend: nothing to queue on
    db.initialize(database)
    assert getattr(database, "write_lock", None) is None
    with serialized_write():
        database.execute_sql("CREATE TABLE t (x INTEGER)")
        database.execute_sql("INSERT INTO t VALUES (1)")
    assert database.execute_sql("SELECT x FROM t").fetchall() == [(1,)]


def test_unit_of_work_opens_and_returns_a_pooled_connection(
    db_settings: DatabaseSettings, restore_proxy: None
) -> None:
    database = init_database(db_settings)
    assert database.is_closed()
    try:
        with unit_of_work() as bound:
            assert bound is database and not database.is_closed()
            first = database.connection()
            assert len(database._in_use) == 1
        assert database.is_closed() and not database._in_use
        with unit_of_work():
            assert database.connection() is first  # the same connection, taken from the pool again
    finally:
        database.close_all()


def test_a_kept_connection_serves_the_next_unit_until_a_unit_fails_or_it_is_released(
    db_settings: DatabaseSettings, restore_proxy: None
) -> None:
    database = init_database(db_settings)
    try:
        with unit_of_work(keep_open=True):
            first = database.connection()
        assert not database.is_closed() and len(database._in_use) == 1  # still this thread's
        with unit_of_work(keep_open=True):
            assert database.connection() is first
        with pytest.raises(RuntimeError), unit_of_work(keep_open=True):
            raise RuntimeError("a unit that fails")
        assert database.is_closed() and not database._in_use  # given back: it may be the broken one
        with unit_of_work(keep_open=True):
            pass
        release_connection()
        assert database.is_closed() and not database._in_use
        release_connection()  # nothing kept: a no-op
    finally:
        database.close_all()


# -- server backends -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "cls"),
    [
        ("postgresql://app:p%40ss%2Fword@db.example:5433/connector", ServerPostgresqlDatabase),
        ("postgres://app:p%40ss%2Fword@db.example:5433/connector", ServerPostgresqlDatabase),
        ("postgresql+pool://app:p%40ss%2Fword@db.example:5433/connector", ServerPostgresqlDatabase),
        ("mysql://app:p%40ss%2Fword@db.example:5433/connector", ServerMySQLDatabase),
    ],
)
def test_server_urls_open_pooled_databases(url: str, cls: type) -> None:
    settings = DatabaseSettings(url=url, max_connections=4, pool_timeout=3.0, stale_timeout=120.0)
    database = open_database(settings)
    assert type(database) is cls
    assert isinstance(database, PooledPostgresqlDatabase | PooledMySQLDatabase)
    assert database.database == "connector"
    assert database.connect_params["password"] == "p@ss/word"  # percent-decoded
    assert (database.connect_params["host"], database.connect_params["port"]) == ("db.example", 5433)
    assert (database._max_connections, database._wait_timeout, database._stale_timeout) == (4, 3.0, 120)


def test_a_server_url_must_name_a_database() -> None:
    with pytest.raises(ValueError, match="names no database"):
        open_database(DatabaseSettings(url="postgresql://app@db.example:5433/"))


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_server_backend_connects(backend: str, tmp_path: Path) -> None:
    reason = unreachable_reason(backend)
    if reason:
        pytest.skip(reason)
    with scratch_database(backend, tmp_path, max_connections=2) as settings:
        database = open_database(settings)
        try:
            with database.connection_context():
                assert database.execute_sql("SELECT 1").fetchone()[0] == 1
            assert len(database._connections) == 1  # returned to the pool, not closed
        finally:
            database.close_all()
