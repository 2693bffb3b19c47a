"""Server backends: which errors mean a lost connection, what a unit of work may have done, SKIP LOCKED."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import peewee as pw
import psycopg2
import pymysql
import pytest

from models import Consumer, db
from models.backends import (
    ServerMySQLDatabase,
    connection_lost,
    mysql_code,
    skip_locked_supported,
)
from models.db import DatabaseSettings, PoolExhausted, retry_safe, unit_of_work
from tests.support.databases import database_name, kill_sessions


def wrapped(kind: type[pw.PeeweeException], cause: BaseException) -> pw.PeeweeException:
    """What peewee raises: its own class around the driver's error (``args[0]``)."""
    return kind(cause, *cause.args)


@pytest.mark.parametrize(
    ("error", "lost"),
    [
        (wrapped(pw.OperationalError, psycopg2.OperationalError("server closed the connection")), True),
        (wrapped(pw.InterfaceError, psycopg2.InterfaceError("connection already closed")), True),
        (wrapped(pw.OperationalError, pymysql.err.OperationalError(2013, "Lost connection")), True),
        (wrapped(pw.OperationalError, pymysql.err.OperationalError(2006, "gone away")), True),
        (wrapped(pw.OperationalError, pymysql.err.OperationalError(1927, "Connection was killed")), True),
        (wrapped(pw.OperationalError, pymysql.err.OperationalError(2003, "Can't connect")), True),
        (wrapped(pw.InterfaceError, pymysql.err.InterfaceError(0, "")), True),
        (wrapped(pw.OperationalError, pymysql.err.OperationalError(1213, "Deadlock found")), False),
        (wrapped(pw.OperationalError, pymysql.err.OperationalError(1205, "Lock wait timeout")), False),
        (wrapped(pw.IntegrityError, psycopg2.IntegrityError("duplicate key")), False),
        (pw.OperationalError("database is locked"), False),  # SQLite: nothing to reconnect
        (pw.InterfaceError("connection to db-7 lost"), False),  # no driver error behind it
        (ValueError("not a database error"), False),
    ],
    ids=lambda v: repr(v)[:60] if isinstance(v, BaseException) else str(v),
)
def test_connection_lost_classification(error: BaseException, lost: bool) -> None:
    assert connection_lost(error) is lost


def test_mysql_code() -> None:
    assert mysql_code(wrapped(pw.OperationalError, pymysql.err.OperationalError(4025, "x"))) == 4025
    assert mysql_code(pw.OperationalError("text only")) is None


@pytest.mark.parametrize(
    ("database", "version", "supported"),
    [
        (pw.PostgresqlDatabase(None), 90400, False),
        (pw.PostgresqlDatabase(None), 90500, True),
        (pw.PostgresqlDatabase(None), 150020, True),
        (pw.MySQLDatabase(None), (5, 7, 44), False),
        (pw.MySQLDatabase(None), (8, 0, 0), False),
        (pw.MySQLDatabase(None), (8, 0, 1), True),
        (pw.MySQLDatabase(None), (9, 1, 0), True),
        (pw.MySQLDatabase(None), (10, 5, 27), False),  # MariaDB before 10.6
        (pw.MySQLDatabase(None), (10, 6, 0), True),
        (pw.MySQLDatabase(None), (11, 4, 2), True),
        (pw.SqliteDatabase(None), (3, 45, 0), False),
        (pw.PostgresqlDatabase(None), None, False),  # never connected: unknown
    ],
)
def test_skip_locked_detection(database: pw.Database, version: object, supported: bool) -> None:
    database.server_version = version
    assert skip_locked_supported(database) is supported


def test_mysql_keeps_microseconds_in_datetime_columns() -> None:
    types = ServerMySQLDatabase("x").get_context_options()["field_types"]
    assert types["DATETIME"] == "DATETIME(6)"


# -- against the suite's backend -----------------------------------------------------------------
@pytest.fixture
def server(database: pw.Database, db_settings: DatabaseSettings) -> Iterator[pw.Database]:
    if db_settings.backend == "sqlite":
        pytest.skip("SQLite has no server connections to lose")
    database.close()  # the fixture's own connection: the tests open theirs through unit_of_work
    yield database


def lose_connection_then(db_settings: DatabaseSettings, action: Callable[[], Any]) -> pw.PeeweeException:
    """Run ``action`` in a unit of work whose connection the server ends first; returns the error."""
    with pytest.raises((pw.OperationalError, pw.InterfaceError)) as caught, unit_of_work():
        db.execute_sql("SELECT 1")  # checked out and alive
        kill_sessions(db_settings.backend, database_name(db_settings))
        action()
    return caught.value


def test_a_read_on_a_killed_connection_is_lost_and_safe_to_retry(
    server: pw.Database, db_settings: DatabaseSettings
) -> None:
    error = lose_connection_then(db_settings, lambda: Consumer.select().count())
    assert connection_lost(error) and retry_safe(error)
    with unit_of_work():  # the dead connection was discarded, not handed out again
        assert db.execute_sql("SELECT 1").fetchone()[0] == 1


def test_a_transaction_cut_before_commit_is_safe_to_retry(
    server: pw.Database, db_settings: DatabaseSettings
) -> None:
    def write_in_a_transaction() -> None:
        with db.atomic():
            Consumer.create(key="never-committed")

    error = lose_connection_then(db_settings, write_in_a_transaction)
    assert retry_safe(error)
    with unit_of_work():
        assert not Consumer.select().exists()


def test_an_autocommitted_write_is_never_retried(server: pw.Database, db_settings: DatabaseSettings) -> None:
    with unit_of_work():
        Consumer.create(key="committed-first")
    error = lose_connection_then(db_settings, lambda: Consumer.create(key="maybe-committed"))
    assert connection_lost(error) and not retry_safe(error)


def test_a_write_earlier_in_the_unit_forbids_a_retry(
    server: pw.Database, db_settings: DatabaseSettings
) -> None:
    with pytest.raises(pw.PeeweeException) as caught, unit_of_work():
        Consumer.create(key="written-before")
        kill_sessions(db_settings.backend, database_name(db_settings))
        Consumer.select().count()
    assert not retry_safe(caught.value)


def test_every_unit_of_work_starts_clean(server: pw.Database, db_settings: DatabaseSettings) -> None:
    with unit_of_work():
        Consumer.create(key="a-write")
        assert db.obj.unit_may_have_effects()
    with unit_of_work():
        assert not db.obj.unit_may_have_effects()
        with unit_of_work():  # nested: shares the outer unit's connection and its record
            Consumer.select().count()
        assert not db.obj.unit_may_have_effects()


# -- the bounded pool -----------------------------------------------------------------------------
def test_a_full_pool_waits_then_fails_clearly(db_settings: DatabaseSettings) -> None:
    from models import init_database

    database = init_database(DatabaseSettings(url=db_settings.url, max_connections=2, pool_timeout=0.3))
    holding, release = threading.Barrier(3), threading.Event()

    def hold() -> None:
        with unit_of_work():
            db.execute_sql("SELECT 1")
            holding.wait(5)
            release.wait(5)

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        holding.wait(5)
        with pytest.raises(PoolExhausted, match=r"within 0.3s \(all 2 pooled connections busy\)"):
            with unit_of_work():
                pass
        # A connection returned while a unit of work waits is handed to it.
        threading.Timer(0.1, release.set).start()
        with unit_of_work():
            assert db.execute_sql("SELECT 1").fetchone()[0] == 1
    finally:
        release.set()
        for thread in threads:
            thread.join(5)
        database.close_all()
