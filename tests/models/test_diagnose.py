"""describe_database_error: real driver failures become one line naming database.url, the cause, the fix."""

from __future__ import annotations

from pathlib import Path

import peewee as pw
import pytest

from models import init_database, migrate
from models.db import DatabaseMissing, DatabaseSettings
from models.diagnose import describe_database_error, redacted
from tests.support.databases import MYSQL_HOST, MYSQL_PORT, PG_HOST, PG_PORT, unreachable_reason


def failure(url: str) -> str:
    with pytest.raises(pw.PeeweeException) as info:
        migrate(init_database(DatabaseSettings(url=url)))
    message = describe_database_error(info.value, url)
    assert "\n" not in message and message.startswith("database.url (")
    return message


def needs(backend: str) -> None:
    reason = unreachable_reason(backend)
    if reason:
        pytest.skip(reason)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"postgresql://postgres@{PG_HOST}:1/test", "nothing accepts connections there"),
        (f"postgresql://postgres@{PG_HOST}:{PG_PORT}/no_such_db_x", "the database does not exist"),
        (f"postgresql://no_such_role_x@{PG_HOST}:{PG_PORT}/test", "the user does not exist"),
        ("postgresql://postgres@no-such-host.invalid:5432/test", "unknown host"),
    ],
)
def test_postgresql_failures(url: str, expected: str) -> None:
    needs("postgresql")
    assert expected in failure(url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"mysql://root@{MYSQL_HOST}:1/test", "nothing accepts connections there"),
        (f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/no_such_db_x", "the database does not exist"),
        (f"mysql://nobody_x:secret-pw@{MYSQL_HOST}:{MYSQL_PORT}/test", "refused the credentials"),
        ("mysql://root@no-such-host.invalid:3306/test", "unknown host"),
    ],
)
def test_mysql_failures(url: str, expected: str) -> None:
    needs("mysql")
    message = failure(url)
    assert expected in message and "secret-pw" not in message


def test_sqlite_failures(tmp_path: Path) -> None:
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("hello, this is not a database " * 100)
    assert "not a SQLite database" in failure(f"sqlite:///{not_sqlite}")
    missing = tmp_path / "missing.db"
    with pytest.raises(DatabaseMissing) as info:
        init_database(DatabaseSettings(url=f"sqlite:///{missing}"), create=False)
    assert "run `connector init` first" in describe_database_error(info.value, f"sqlite:///{missing}")
    assert not missing.exists()


def test_an_unrecognised_error_keeps_the_drivers_words() -> None:
    message = describe_database_error(pw.OperationalError("disk I/O error"), "sqlite:///c.db")
    assert message == "database.url (sqlite:///c.db): disk I/O error"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://svc:p%40ss@db:5432/c", "postgresql://svc:***@db:5432/c"),
        ("postgresql://svc@db/c", "postgresql://svc@db/c"),
        ("sqlite:///var/c.db", "sqlite:///var/c.db"),
    ],
)
def test_urls_are_shown_without_their_password(url: str, shown: str) -> None:
    assert redacted(url) == shown
