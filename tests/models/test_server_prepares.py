"""PostgreSQL: the hot queries as server-side prepared statements, once per connection, the retry
bookkeeping reading what a prepared statement is from its name."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import peewee as pw
import pytest

from models import Nonce, User, db, init_database, migrate
from models.backends import _numbered, prepared_name
from models.db import unit_of_work
from models.prepared import PreparedQuery
from tests.support.builders import create_org, create_user
from tests.support.databases import scratch_database, unreachable_reason

LOGINS_OF = PreparedQuery(
    lambda org: User.select(User.login).where(User.organization == org).order_by(User.login), org=str
)


def test_placeholders_are_numbered_and_escaped_percents_kept() -> None:
    assert _numbered("a = %s AND b LIKE 'x%%' AND c = %s") == "a = $1 AND b LIKE 'x%%' AND c = $2"


def test_names_say_whether_the_statement_reads() -> None:
    assert prepared_name("SELECT 1").startswith("read_")
    assert prepared_name('INSERT INTO "nonce" VALUES (%s)').startswith("write_")
    assert prepared_name("WITH x AS (DELETE FROM t RETURNING 1) SELECT 1").startswith("write_")
    assert prepared_name("SELECT 1") == prepared_name("SELECT 1") != prepared_name("SELECT 2")


@pytest.fixture
def postgres(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[pw.Database]:
    reason = unreachable_reason("postgresql")
    if reason:
        pytest.skip(reason)
    saved = db.obj
    prepares = getattr(request, "param", True)
    with scratch_database("postgresql", tmp_path, server_prepared_statements=prepares) as settings:
        database = init_database(settings)
        migrate(database)
        try:
            yield database
        finally:
            database.close_all()
            db.initialize(saved)


def prepared_here() -> list[str]:
    rows = db.obj.execute_sql("SELECT name FROM pg_prepared_statements ORDER BY name").fetchall()
    return [name for (name,) in rows]


def test_prepared_once_per_connection_with_the_same_results(postgres: pw.Database) -> None:
    with unit_of_work():
        org = create_org("A")
        for login in ("zed", "amy"):
            create_user(login, org)
        for _ in range(3):
            assert LOGINS_OF.all(org=org.id) == [("amy",), ("zed",)]
        assert LOGINS_OF.all(org="' OR 1=1 --") == []  # still a bound value
        sql, _ = LOGINS_OF.sql_and_params({"org": "x"})
        assert prepared_here() == [prepared_name(sql)]
    postgres.close_all()  # a new connection knows nothing of the old one's statements
    with unit_of_work():
        assert prepared_here() == []
        assert LOGINS_OF.all(org=org.id) == [("amy",), ("zed",)]
        assert prepared_here() == [prepared_name(sql)]


@pytest.mark.parametrize("postgres", [False], indirect=True)
def test_switched_off_the_text_is_sent_every_time(postgres: pw.Database) -> None:
    with unit_of_work():
        org = create_org("A")
        create_user("amy", org)
        assert LOGINS_OF.all(org=org.id) == [("amy",)]
        assert prepared_here() == []


def test_a_prepared_read_leaves_the_unit_retryable_a_prepared_write_does_not(postgres: pw.Database) -> None:
    with unit_of_work():
        postgres.unit_started()
        assert LOGINS_OF.all(org="nobody") == []  # PREPARE, then EXECUTE read_...
        assert postgres.unit_may_have_effects() is False
        assert Nonce.record("consumer-key-1", "nonce-1", int(time.time())) is True  # EXECUTE write_...
        assert postgres.unit_may_have_effects() is True
        assert Nonce.record("consumer-key-1", "nonce-1", int(time.time())) is False  # rowcount 0: a replay
