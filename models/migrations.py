"""Schema versions owned by code: an ordered list of steps, each applied once and recorded."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import peewee as pw
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as run_migrations

from models.aps import APS_MODELS, ApsInstance, ApsJob
from models.db import BaseModel, utcnow
from models.mirroring import MIRRORING_MODELS
from models.outbox import OutboxItem
from models.tables import CORE_MODELS, Nonce

log = logging.getLogger(__name__)


class SchemaVersion(BaseModel):
    version = pw.IntegerField(primary_key=True)
    description = pw.CharField(max_length=255)
    applied_at = pw.DateTimeField(default=utcnow)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[pw.Database], None]


def _create(models: list[type[BaseModel]]) -> Callable[[pw.Database], None]:
    def apply(database: pw.Database) -> None:
        database.create_tables(models, safe=True)

    return apply


_MYSQL_TYPES = {pw.DateTimeField: "DATETIME(6)", pw.TextField: "LONGTEXT"}


def _mysql_like_the_others(database: pw.Database) -> None:
    """Tables made on MySQL before models/backends.py asked for DATETIME(6) and LONGTEXT: plain DATETIME
    drops microseconds (leases and time order then differ) and TEXT stops at 64 KiB. Widen them."""
    if not isinstance(database, pw.MySQLDatabase):
        return
    for model in [*CORE_MODELS, OutboxItem, *APS_MODELS, SchemaVersion]:
        changes = [
            f"MODIFY `{f.column_name}` {kind} {'NULL' if f.null else 'NOT NULL'}"
            for f in model._meta.sorted_fields
            for field_class, kind in _MYSQL_TYPES.items()
            if type(f) is field_class
        ]
        if changes:
            database.execute_sql(f"ALTER TABLE `{model._meta.table_name}` {', '.join(changes)}")


def _wider_nonces(database: pw.Database) -> None:
    """Nonces of up to 128 characters (RFC 5849 sets no limit; base64 nonces of common clients are long).

    SQLite does not enforce VARCHAR lengths, so only the server databases change.
    """
    table = Nonce._meta.table_name
    if isinstance(database, pw.PostgresqlDatabase):
        database.execute_sql(f'ALTER TABLE "{table}" ALTER COLUMN "nonce" TYPE VARCHAR(128)')
    elif isinstance(database, pw.MySQLDatabase):
        database.execute_sql(f"ALTER TABLE `{table}` MODIFY `nonce` VARCHAR(128) NOT NULL")


def _instance_upgrades(database: pw.Database) -> None:
    """aps_instance.upgraded_from / upgraded_at, for the APS upgrade call.

    A database created after this change got them from migration 3 (which creates the current models),
    so only a missing column is added. MySQL keeps microseconds like the rest of its columns (migration 4).
    """
    table = ApsInstance._meta.table_name
    present = {column.name for column in database.get_columns(table)}
    stamp = {pw.MySQLDatabase: "DATETIME(6)", pw.PostgresqlDatabase: "TIMESTAMP"}
    kind = next((sql for cls, sql in stamp.items() if isinstance(database, cls)), "DATETIME")
    quote = "`" if isinstance(database, pw.MySQLDatabase) else '"'
    for column, sql_type in (("upgraded_from", "VARCHAR(64)"), ("upgraded_at", kind)):
        if column not in present:
            database.execute_sql(
                f"ALTER TABLE {quote}{table}{quote} ADD COLUMN {quote}{column}{quote} {sql_type} NULL"
            )


def _jobs_per_instance(database: pw.Database) -> None:
    """aps_job unique on (instance_id, aps_id, operation) instead of (aps_id, operation).

    A database created after this change got the new index from migration 3 (the current model): only
    what is missing changes.
    """
    table = ApsJob._meta.table_name
    names = {index.name for index in database.get_indexes(table)}
    migrator = SchemaMigrator.from_database(database)
    steps = []
    if f"{table}_aps_id_operation" in names:
        steps.append(migrator.drop_index(table, f"{table}_aps_id_operation"))
    if f"{table}_instance_id_aps_id_operation" not in names:
        steps.append(migrator.add_index(table, ("instance_id", "aps_id", "operation"), True))
    run_migrations(*steps)


def _nonces_by_key(database: pw.Database) -> None:
    """nonce keyed by (consumer_key, nonce) instead of a row id, a unique index and a timestamp index
    (models/tables.py).

    A database created after this change got the new table from migration 1: only an old one (with its
    ``id`` column) is rebuilt. The recorded nonces are copied, so no request of the window can be replayed
    across the upgrade; the old unique index guarantees the copy cannot collide.
    """
    table = Nonce._meta.table_name
    if "id" not in {column.name for column in database.get_columns(table)}:
        return
    staging = f"{table}_v9"

    class Staging(Nonce):
        class Meta:
            table_name = staging

    database.create_tables([Staging])
    columns = '"timestamp", "consumer_key", "nonce"'
    if isinstance(database, pw.MySQLDatabase):
        columns = columns.replace('"', "`")
    quote = "`" if isinstance(database, pw.MySQLDatabase) else '"'
    database.execute_sql(
        f"INSERT INTO {quote}{staging}{quote} ({columns}) SELECT {columns} FROM {quote}{table}{quote}"
    )
    database.drop_tables([Nonce])
    run_migrations(SchemaMigrator.from_database(database).rename_table(staging, table))


# Append only. A step that changes an existing table uses playhouse.migrate (add_column, add_index...).
MIGRATIONS: list[Migration] = [
    Migration(1, "core: organizations, users, mappings, consumers, nonces, ledger", _create(CORE_MODELS)),
    Migration(2, "outbox: alerts and workloads queued for the Acronis API", _create([OutboxItem])),
    Migration(3, "aps: application instances, provisioned resources, async jobs", _create(APS_MODELS)),
    Migration(4, "mysql: DATETIME(6) and LONGTEXT, as the other backends store", _mysql_like_the_others),
    Migration(5, "nonces: up to 128 characters (RFC 5849)", _wider_nonces),
    Migration(6, "aps: the last upgrade call on an instance", _instance_upgrades),
    Migration(7, "mirroring: mirrored Acronis tenants (CyberApp v2)", _create(MIRRORING_MODELS)),
    Migration(8, "aps: jobs keyed by instance, aps.id and operation", _jobs_per_instance),
    Migration(9, "nonces: keyed by consumer and nonce, one b-tree", _nonces_by_key),
]


def current_version(database: pw.Database) -> int:
    if not database.table_exists(SchemaVersion._meta.table_name):
        return 0
    row = SchemaVersion.select(pw.fn.MAX(SchemaVersion.version)).scalar()
    return int(row or 0)


def migrate(database: pw.Database, migrations: list[Migration] | None = None) -> list[int]:
    """Bring the schema to the newest version; returns the versions applied (empty when up to date)."""
    steps = MIGRATIONS if migrations is None else migrations
    applied: list[int] = []
    with database.connection_context():
        database.create_tables([SchemaVersion], safe=True)
        done = current_version(database)
        for step in steps:
            if step.version <= done:
                continue
            with database.atomic():
                step.apply(database)
                SchemaVersion.insert(version=step.version, description=step.description).execute()
            log.info("schema migrated to version %d: %s", step.version, step.description)
            applied.append(step.version)
    return applied
