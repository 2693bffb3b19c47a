"""Pooled server databases: lost-connection detection, retry bookkeeping per unit of work, MySQL fixes.

peewee's pools already drop a dead idle connection at check-out (PostgreSQL runs ``SELECT 1``, MySQL
pings), so after a server restart or a killed backend the next unit of work gets a fresh connection. What
is left is a unit of work whose connection dies while it is checked out. It may run again only when
nothing it sent can have taken effect, so these classes remember, per thread, whether the current unit
sent a statement that could have: a write outside a transaction, or a COMMIT (whose lost answer leaves
the outcome unknown). A transaction cut off before its COMMIT was rolled back by the server.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
import weakref
from typing import Any

import peewee as pw
from playhouse.pool import PooledMySQLDatabase, PooledPostgresqlDatabase

# SQLSTATE class 08 is "connection exception"; these three end the session from the server side.
PG_LOST_STATES = frozenset({"57P01", "57P02", "57P03"})  # admin/crash shutdown, cannot connect now
# Server shutdown, killed (MariaDB), cannot connect, gone away, lost during query, idle timeout (MySQL 8).
MYSQL_LOST_CODES = frozenset({1053, 1927, 2003, 2006, 2013, 4031})
MYSQL_CHECK_VIOLATIONS = frozenset({3819, 4025})  # MySQL 8, MariaDB: a CHECK constraint failed
_READS = re.compile(r"\s*(SELECT|SHOW)\b", re.IGNORECASE)
# Statements without effects for the retry bookkeeping: reads, PREPARE, and EXECUTE of a prepared read
# (prepared statements are named after what they are, see ServerPostgresqlDatabase.execute_prepared).
_NO_EFFECTS = re.compile(r"\s*(?:(?:SELECT|SHOW|PREPARE)\b|EXECUTE\s+read_)", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"%s|%%")


def connection_lost(error: BaseException) -> bool:
    """True when a peewee error means the connection is gone, not that the statement was refused."""
    if not isinstance(error, pw.OperationalError | pw.InterfaceError):
        return False
    cause = getattr(error, "orig", None)  # peewee keeps the driver's exception here
    module = type(cause).__module__
    if module.startswith("psycopg2"):
        state = getattr(cause, "pgcode", None)
        return state is None or state.startswith("08") or state in PG_LOST_STATES
    if module.startswith("pymysql"):
        code = mysql_code(error)
        return code in MYSQL_LOST_CODES or (isinstance(error, pw.InterfaceError) and code == 0)
    return False


def mysql_code(error: pw.PeeweeException) -> int | None:
    """The MySQL error number behind a peewee error (pymysql puts it first in ``args``), else None."""
    code = getattr(getattr(error, "orig", None), "args", (None,))[:1]
    return code[0] if code and isinstance(code[0], int) else None


class UnitBookkeeping:
    """Mixin: remembers per thread whether the current unit of work may already have changed data."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._units = threading.local()

    def unit_started(self) -> None:
        self._units.effects = False

    def unit_may_have_effects(self) -> bool:
        return bool(getattr(self._units, "effects", True))

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        if not _NO_EFFECTS.match(sql) and not self.in_transaction():  # type: ignore[attr-defined]
            self._units.effects = True  # before sending: the answer may be lost after it took effect
        return super().execute_sql(sql, params)  # type: ignore[misc]

    def commit(self) -> Any:
        self._units.effects = True
        return super().commit()  # type: ignore[misc]


class ServerPostgresqlDatabase(UnitBookkeeping, PooledPostgresqlDatabase):
    """PostgreSQL through a bounded pool; the hot queries as server-side prepared statements.

    PostgreSQL parses and plans every statement it is sent as text. For the queries each request runs
    (models/prepared.py) that was most of their cost on the server: the subtree CTE took 152 us as text
    and 28 us prepared, the account lookup 58 and 22, the nonce INSERT 142 and 75 (measured one after
    another on one connection). ``execute_prepared`` sends PREPARE once per connection and statement,
    then EXECUTE. A prepared statement lives as long as its session, even when the transaction that
    prepared it rolls back, so remembering the names per connection object is exact; a new connection
    prepares again. ``server_prepares=False`` (``database.server_prepared_statements``) sends the text
    every time: for a pooler in transaction mode (pgbouncer), which moves sessions under the connection.
    """

    def __init__(self, *args: Any, server_prepares: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.server_prepares = server_prepares
        self._prepared: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
        self._prepared_lock = threading.Lock()

    def execute_prepared(self, sql: str, params: list[Any]) -> Any:
        """Run ``sql`` (peewee's text, ``%s`` placeholders) as a prepared statement of this connection."""
        name = prepared_name(sql)
        connection = self.connection()
        with self._prepared_lock:
            names = self._prepared.setdefault(connection, set())
        if name not in names:
            self.execute_sql(f"PREPARE {name} AS {_numbered(sql)}")
            names.add(name)
        if not params:
            return self.execute_sql(f"EXECUTE {name}")
        return self.execute_sql(f"EXECUTE {name}({', '.join(['%s'] * len(params))})", params)


def prepared_name(sql: str) -> str:
    """``read_<digest>`` or ``write_<digest>``: the retry bookkeeping reads the kind off the name."""
    kind = "read" if _READS.match(sql) else "write"
    return f"{kind}_{hashlib.sha256(sql.encode()).hexdigest()[:24]}"


def _numbered(sql: str) -> str:
    """``%s`` placeholders as ``$1, $2 ...`` (PREPARE's form); ``%%`` stays for the driver to unescape."""
    counter = itertools.count(1)
    return _PLACEHOLDER.sub(lambda m: f"${next(counter)}" if m.group() == "%s" else "%%", sql)


class ServerMySQLDatabase(UnitBookkeeping, PooledMySQLDatabase):
    """MySQL/MariaDB through a bounded pool, made to behave like the other two backends.

    - ``DATETIME`` keeps microseconds (``DATETIME(6)``); plain ``DATETIME`` drops them, so leases,
      ``not_after`` and ordering by time would differ from PostgreSQL and SQLite.
    - ``TEXT`` is ``LONGTEXT``: MySQL's ``TEXT`` stops at 64 KiB, and a larger callback body, job
      payload or stored response would be refused there while the other backends keep it.
    - A failed CHECK constraint raises ``IntegrityError`` (the driver reports it as an operational error).
    """

    field_types = {**PooledMySQLDatabase.field_types, "DATETIME": "DATETIME(6)", "TEXT": "LONGTEXT"}

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        try:
            return super().execute_sql(sql, params)
        except pw.OperationalError as e:
            if mysql_code(e) in MYSQL_CHECK_VIOLATIONS:
                raise pw.IntegrityError(e.orig, *e.args) from e
            raise


def skip_locked_supported(database: pw.Database) -> bool:
    """Whether ``FOR UPDATE SKIP LOCKED`` works here: PostgreSQL >= 9.5, MySQL >= 8.0.1, MariaDB >= 10.6.

    Call with a connection open (the server version is read on connect). SQLite has no row locks.
    """
    version = getattr(database, "server_version", None)
    if isinstance(database, pw.PostgresqlDatabase):
        return isinstance(version, int) and version >= 90500
    if isinstance(database, pw.MySQLDatabase) and isinstance(version, tuple):
        if version >= (10,):  # Oracle MySQL has no 10.x: this is MariaDB
            return version >= (10, 6)
        return version >= (8, 0, 1)
    return False
