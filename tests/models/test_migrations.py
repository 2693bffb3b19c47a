"""Code-owned schema versions: applied once each, in order, recorded; a failing step leaves no trace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee as pw
import pytest
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as run_migrations

from models import (
    ALL_MODELS,
    MIGRATIONS,
    ApsInstance,
    Consumer,
    Nonce,
    OutboxItem,
    SchemaVersion,
    init_database,
    migrate,
)
from models.db import BaseModel, DatabaseSettings
from models.migrations import Migration, current_version
from tests.support.databases import BACKENDS, scratch_database, unreachable_reason

VERSIONS = [m.version for m in MIGRATIONS]
NEXT = VERSIONS[-1] + 1


@pytest.fixture
def empty(own_db_settings: DatabaseSettings) -> Iterator[pw.Database]:
    database = init_database(own_db_settings)
    yield database
    database.close_all()


def recorded(database: pw.Database) -> list[tuple[int, str]]:
    with database.connection_context():
        return [(r.version, r.description) for r in SchemaVersion.select().order_by(SchemaVersion.version)]


def test_the_shipped_list_is_append_only_in_shape() -> None:
    assert VERSIONS == list(range(1, len(VERSIONS) + 1))
    assert all(m.description for m in MIGRATIONS)


def test_an_empty_database_gets_every_version_in_order(empty: pw.Database) -> None:
    with empty.connection_context():
        assert current_version(empty) == 0
    assert migrate(empty) == VERSIONS
    assert recorded(empty) == [(m.version, m.description) for m in MIGRATIONS]
    with empty.connection_context():
        assert current_version(empty) == VERSIONS[-1]
        assert all(empty.table_exists(model._meta.table_name) for model in ALL_MODELS)


def test_steps_run_in_list_order_once_each(empty: pw.Database) -> None:
    calls: list[int] = []

    def step(version: int) -> Migration:
        return Migration(version, f"step {version}", lambda database: calls.append(version))

    steps = [step(1), step(2), step(3)]
    assert migrate(empty, steps) == [1, 2, 3]
    assert migrate(empty, steps) == []
    assert calls == [1, 2, 3]


def test_a_second_run_applies_nothing(empty: pw.Database) -> None:
    migrate(empty)
    before = recorded(empty)
    assert migrate(empty) == []
    assert recorded(empty) == before


def test_an_appended_migration_applies_only_itself(empty: pw.Database) -> None:
    migrate(empty)
    seen: list[pw.Database] = []
    extra = Migration(NEXT, "test: one more step", seen.append)
    assert migrate(empty, [*MIGRATIONS, extra]) == [NEXT]
    assert seen == [empty]
    assert recorded(empty)[-1] == (NEXT, "test: one more step")


def test_a_failing_migration_rolls_back_its_own_step(empty: pw.Database) -> None:
    migrate(empty)

    def broken(database: pw.Database) -> None:
        Consumer.create(key="written-by-a-broken-step")
        raise RuntimeError("step failed half way")

    with pytest.raises(RuntimeError, match="half way"):
        migrate(empty, [*MIGRATIONS, Migration(NEXT, "test: broken", broken)])
    with empty.connection_context():
        assert current_version(empty) == VERSIONS[-1]
        assert not Consumer.select().exists()
    assert [v for v, _ in recorded(empty)] == VERSIONS
    # Once fixed, the same version applies normally.
    assert migrate(empty, [*MIGRATIONS, Migration(NEXT, "test: fixed", lambda database: None)]) == [NEXT]


def test_earlier_steps_of_the_same_run_stay_applied(empty: pw.Database) -> None:
    def broken(database: pw.Database) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        migrate(empty, [*MIGRATIONS, Migration(NEXT, "test: broken", broken)])
    assert [v for v, _ in recorded(empty)] == VERSIONS  # each step is its own transaction


def test_a_failing_schema_step_leaves_no_table(empty: pw.Database, own_db_settings: DatabaseSettings) -> None:
    if own_db_settings.backend == "mysql":
        pytest.skip("MySQL commits DDL implicitly: a schema step cannot be rolled back there")
    migrate(empty)

    def broken(database: pw.Database) -> None:
        database.execute_sql("CREATE TABLE half_done (id INTEGER PRIMARY KEY)")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        migrate(empty, [*MIGRATIONS, Migration(NEXT, "test: broken ddl", broken)])
    with empty.connection_context():
        assert not empty.table_exists("half_done")


# -- the same schema on every backend -------------------------------------------------------------
COARSE = {
    "int": "integer",
    "bigint": "integer",
    "smallint": "integer",
    "tinyint": "integer",
    "bool": "integer",
}
FINE = {
    "integer": "int",
    "int": "int",
    "bigint": "bigint",
    "boolean": "bool",
    "tinyint": "bool",  # MySQL's BOOL
    "character varying": "varchar",
    "varchar": "varchar",
    "text": "text",
    "longtext": "text",
    "timestamp without time zone": "datetime",
    "datetime": "datetime",
}


def server_columns(database: pw.Database, table: str) -> dict[str, tuple[str, int | None]]:
    """column -> (type, length or datetime precision), from information_schema."""
    schema = "current_schema()" if isinstance(database, pw.PostgresqlDatabase) else "DATABASE()"
    rows = database.execute_sql(
        "SELECT column_name, data_type, character_maximum_length, datetime_precision "
        f"FROM information_schema.columns WHERE table_schema = {schema} AND table_name = %s",
        (table,),
    ).fetchall()
    return {
        name: (FINE[kind.lower()], size(kind.lower(), length, precision))
        for name, kind, length, precision in rows
    }


def size(kind: str, length: int | None, precision: int | None) -> int | None:
    """Varchar length, datetime precision; None for unbounded text (MySQL's plain TEXT stops at 64 KiB)."""
    if kind == "longtext" or (kind == "text" and length is None):
        return None
    return length or precision


def describe(database: pw.Database) -> dict[str, Any]:
    """Per table: columns (name, type family, varchar length, null, pk) in order, indexes, foreign keys;
    on servers also the exact types ("fine"), which SQLite cannot express (INTEGER holds everything)."""
    tables: dict[str, Any] = {}
    with database.connection_context():
        for table in sorted(database.get_tables()):
            fine = {} if isinstance(database, pw.SqliteDatabase) else server_columns(database, table)
            columns = []
            for column in database.get_columns(table):
                if fine:
                    family, length = fine[column.name]
                else:  # SQLite declares "VARCHAR(36)", "INTEGER", "DATETIME", "TEXT"
                    raw = column.data_type.lower()
                    family, length = raw.split("(")[0], int(raw[8:-1]) if "(" in raw else None
                length = length if family == "varchar" else None
                columns.append(
                    (column.name, COARSE.get(family, family), length, column.null, column.primary_key)
                )
            indexes = sorted(
                (tuple(i.columns), i.unique, i.name)
                for i in database.get_indexes(table)
                if not _primary(i.name)
            )
            foreign = sorted(
                (f.column, f.dest_table, f.dest_column) for f in database.get_foreign_keys(table)
            )
            tables[table] = {"columns": columns, "indexes": indexes, "foreign": foreign, "fine": fine}
    return tables


def migrated_schema(backend: str, directory: Path) -> dict[str, Any]:
    directory.mkdir()
    with scratch_database(backend, directory) as settings:
        database = init_database(settings)
        try:
            assert migrate(database) == VERSIONS
            return describe(database)
        finally:
            database.close_all()


def test_every_reachable_backend_gets_the_same_tables_columns_and_indexes(tmp_path: Path) -> None:
    schemas = {b: migrated_schema(b, tmp_path / b) for b in BACKENDS if unreachable_reason(b) is None}
    if len(schemas) == 1:
        pytest.skip("neither PostgreSQL nor MySQL/MariaDB is reachable: nothing to compare SQLite with")
    coarse = {
        b: {t: {k: v for k, v in d.items() if k != "fine"} for t, d in s.items()} for b, s in schemas.items()
    }
    for backend, schema in coarse.items():
        assert schema == coarse["sqlite"], f"{backend} differs from sqlite"
    servers = [schemas[b] for b in ("postgresql", "mysql") if b in schemas]
    for schema in servers:  # microseconds everywhere (SQLite stores the full ISO text)
        assert {p for t in schema.values() for (kind, p) in t["fine"].values() if kind == "datetime"} == {6}
    if len(servers) == 2:
        postgresql, mysql = ({t: d["fine"] for t, d in s.items()} for s in servers)
        assert postgresql == mysql  # int vs bigint, bool, varchar lengths, datetime precision


def test_mysql_tables_made_before_datetime6_and_longtext_are_widened(
    own_db_settings: DatabaseSettings,
) -> None:
    if own_db_settings.backend != "mysql":
        pytest.skip("MySQL/MariaDB only: the other backends always kept microseconds and long text")
    database = init_database(own_db_settings)
    try:
        database._field_types.update(DATETIME="DATETIME", TEXT="TEXT")  # peewee's MySQL defaults
        assert migrate(database, MIGRATIONS[:3]) == [1, 2, 3]
        with database.connection_context():
            assert server_columns(database, "outbox_item")["lease_expires"] == ("datetime", 0)
            assert server_columns(database, "outbox_item")["payload"] == ("text", 65535)
        database._field_types.update(DATETIME="DATETIME(6)", TEXT="LONGTEXT")
        assert migrate(database, MIGRATIONS[:4]) == [4]
        with database.connection_context():
            columns = server_columns(database, "outbox_item")
            assert (columns["lease_expires"], columns["payload"]) == (("datetime", 6), ("text", None))
            assert server_columns(database, "schema_version")["applied_at"] == ("datetime", 6)
            assert OutboxItem.select().count() == 0  # the widened table is still usable
    finally:
        database.close_all()


def test_nonce_columns_made_for_64_characters_are_widened_to_128(own_db_settings: DatabaseSettings) -> None:
    database = init_database(own_db_settings)
    try:
        assert migrate(database, MIGRATIONS[:4]) == [1, 2, 3, 4]
        with database.connection_context():
            if isinstance(database, pw.PostgresqlDatabase):  # the column as versions 1-4 made it
                database.execute_sql('ALTER TABLE "nonce" ALTER COLUMN "nonce" TYPE VARCHAR(64)')
            elif isinstance(database, pw.MySQLDatabase):
                database.execute_sql("ALTER TABLE `nonce` MODIFY `nonce` VARCHAR(64) NOT NULL")
        assert migrate(database) == [5, 6, 7, 8, 9]
        with database.connection_context():
            assert Nonce.record("key", "n" * 128, 1_700_000_000)  # a 64-character column would refuse it
            assert Nonce.get().nonce == "n" * 128
    finally:
        database.close_all()


def test_instances_made_before_upgrade_tracking_get_its_columns(own_db_settings: DatabaseSettings) -> None:
    database = init_database(own_db_settings)
    try:
        assert migrate(database, MIGRATIONS[:5]) == [1, 2, 3, 4, 5]
        quote = "`" if isinstance(database, pw.MySQLDatabase) else '"'
        with database.connection_context():  # the table as versions 1-5 made it
            for column in ("upgraded_from", "upgraded_at"):
                database.execute_sql(f"ALTER TABLE aps_instance DROP COLUMN {quote}{column}{quote}")
        assert migrate(database) == [6, 7, 8, 9]
        with database.connection_context():
            columns = {c.name for c in database.get_columns("aps_instance")}
            assert {"upgraded_from", "upgraded_at"} <= columns
            assert ApsInstance.select(ApsInstance.upgraded_from).count() == 0  # usable through the model
    finally:
        database.close_all()


def test_jobs_unique_per_resource_become_unique_per_instance(own_db_settings: DatabaseSettings) -> None:
    database = init_database(own_db_settings)
    try:
        assert migrate(database, MIGRATIONS[:7]) == [1, 2, 3, 4, 5, 6, 7]
        migrator = SchemaMigrator.from_database(database)
        with database.connection_context():  # the index as versions 1-7 made it
            run_migrations(
                migrator.drop_index("aps_job", "aps_job_instance_id_aps_id_operation"),
                migrator.add_index("aps_job", ("aps_id", "operation"), True),
            )
        assert migrate(database) == [8, 9]
        with database.connection_context():
            unique = {tuple(i.columns) for i in database.get_indexes("aps_job") if i.unique}
            assert ("instance_id", "aps_id", "operation") in unique and ("aps_id", "operation") not in unique
    finally:
        database.close_all()


class NonceWithRowId(BaseModel):
    """The nonce table as versions 1-8 made it: a row id, unique (consumer_key, nonce), timestamp index."""

    consumer_key = pw.CharField(max_length=128)
    nonce = pw.CharField(max_length=128)
    timestamp = pw.BigIntegerField(index=True)

    class Meta:
        table_name = "nonce"
        indexes = ((("consumer_key", "nonce"), True),)


def test_nonces_with_a_row_id_and_two_indexes_are_rebuilt_on_their_key_keeping_every_nonce(
    own_db_settings: DatabaseSettings,
) -> None:
    database = init_database(own_db_settings)
    try:
        assert migrate(database, MIGRATIONS[:8]) == [1, 2, 3, 4, 5, 6, 7, 8]
        with database.connection_context():
            database.drop_tables([Nonce])
            database.create_tables([NonceWithRowId])
            NonceWithRowId.insert_many(
                [("key", f"nonce-{i}", 1_700_000_000 + i) for i in range(3)],
                fields=[NonceWithRowId.consumer_key, NonceWithRowId.nonce, NonceWithRowId.timestamp],
            ).execute()
        assert migrate(database) == [9]
        with database.connection_context():
            assert "id" not in {c.name for c in database.get_columns("nonce")}
            assert not [i for i in database.get_indexes("nonce") if not _primary(i.name)]
            assert sorted(n.nonce for n in Nonce.select()) == ["nonce-0", "nonce-1", "nonce-2"]
            assert not Nonce.record("key", "nonce-1", 1_700_000_001)  # recorded before: still a replay
            assert not Nonce.record("key", "nonce-1", 1_700_000_005)  # one nonce per consumer, any time
            assert Nonce.record("other-key", "nonce-1", 1_700_000_001)
            assert Nonce.purge(older_than=1_700_000_002) == 3  # both of 1_700_000_001 and the older one
    finally:
        database.close_all()


def _primary(name: str) -> bool:
    return name == "PRIMARY" or name.endswith("_pkey") or name.startswith("sqlite_autoindex")
