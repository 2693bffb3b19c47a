"""Test databases: a temporary SQLite file, or a database of its own on a reachable server.

CREATE DATABASE costs a PostgreSQL server ~0.2 s and most tests only need empty tables, so servers share
one migrated database per session (``SharedDatabase``), emptied before each test by a DELETE of the tables
holding rows and a restart of the moved id sequences (~50x cheaper than TRUNCATE on both servers). Tests
needing a database of their own (migrations) use ``scratch_database``. For scripts/test,
``python -m tests.support.databases unreachable <backend>`` prints why a server cannot be used (exit 0),
else exit 1.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import peewee as pw

from models import ALL_MODELS, SchemaVersion, init_database, migrate
from models.db import DatabaseSettings

PG_HOST, PG_PORT = "127.0.0.1", 5432
MYSQL_HOST, MYSQL_PORT = "127.0.0.1", 3306
BACKENDS = ("sqlite", "postgresql", "mysql")
LOCK_TIMEOUT = 3  # seconds a reset waits for a lock a leftover connection holds, before evicting it


def selected_backend() -> str:
    """The backend the suite runs on: CONNECTOR_TEST_DATABASE, default sqlite."""
    backend = os.environ.get("CONNECTOR_TEST_DATABASE", "sqlite")
    if backend not in BACKENDS:
        raise RuntimeError(f"CONNECTOR_TEST_DATABASE must be one of {BACKENDS}, got {backend!r}")
    return backend


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def unreachable_reason(backend: str) -> str | None:
    """None when the backend can be used here, else a reason fit for pytest.skip."""
    if backend == "postgresql":
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            return "psycopg2 is not installed"
        if not reachable(PG_HOST, PG_PORT):
            return f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT}"
    if backend == "mysql":
        try:
            import pymysql  # noqa: F401
        except ImportError:
            return "pymysql is not installed"
        if not reachable(MYSQL_HOST, MYSQL_PORT):
            return f"MySQL/MariaDB is not reachable on {MYSQL_HOST}:{MYSQL_PORT}"
    return None


def server_url(backend: str, name: str) -> str:
    if backend == "postgresql":
        return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    # PyMySQL >= 1.2 tries TLS on every connect unless told not to, and building that context costs
    # 25 ms (the system CA store); the loopback test server offers no TLS anyway.
    return f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{name}?ssl_disabled=true"


def admin_connection(backend: str, name: str | None = None) -> Any:
    """An autocommit driver connection as the superuser (to ``name``, default the maintenance database)."""
    if backend == "postgresql":
        import psycopg2

        conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname=name or "test")
        conn.autocommit = True
        return conn
    import pymysql

    return pymysql.connect(
        host=MYSQL_HOST, port=MYSQL_PORT, user="root", database=name, autocommit=True, ssl_disabled=True
    )


def create_server_database(backend: str, name: str) -> None:
    admin = admin_connection(backend)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}{' CHARACTER SET utf8mb4' if backend == 'mysql' else ''}")
    finally:
        admin.close()


def drop_server_database(backend: str, name: str) -> None:
    admin = admin_connection(backend)
    try:
        with admin.cursor() as cur:
            if backend == "postgresql":
                cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                return
            evict_mysql_sessions(cur, name)
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
    finally:
        admin.close()


def evict_mysql_sessions(cur: Any, name: str) -> int:
    """KILL every other session on database ``name`` (they would hold metadata or row locks)."""
    cur.execute(
        "SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()", (name,)
    )
    killed = 0
    for (session,) in cur.fetchall():
        try:
            cur.execute(f"KILL {int(session)}")
            killed += 1
        except Exception:  # noqa: BLE001 - it ended on its own meanwhile
            pass
    return killed


def kill_sessions(backend: str, name: str) -> int:
    """End every connection to database ``name`` from the server side (as a restart would); how many."""
    admin = admin_connection(backend)
    try:
        with admin.cursor() as cur:
            if backend == "mysql":
                return evict_mysql_sessions(cur, name)
            cur.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            return int(cur.fetchone()[0])
    finally:
        admin.close()


def database_name(settings: DatabaseSettings) -> str:
    return urlsplit(settings.url).path.lstrip("/")


@contextmanager
def scratch_database(backend: str, tmp_path: Path, **settings: object) -> Iterator[DatabaseSettings]:
    """Settings for a fresh, empty database that is dropped afterwards."""
    if backend == "sqlite":
        yield DatabaseSettings(url=f"sqlite:///{tmp_path / 'connector.db'}", **settings)  # type: ignore[arg-type]
        return
    name = "t_" + uuid.uuid4().hex[:16]
    create_server_database(backend, name)
    try:
        yield DatabaseSettings(url=server_url(backend, name), **settings)  # type: ignore[arg-type]
    finally:
        drop_server_database(backend, name)


class SharedDatabase:
    """One migrated server database for the whole session; ``reset()`` empties it for the next test."""

    def __init__(self, backend: str, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.backend = backend
        self.lock_timeout = lock_timeout
        self.name = "t_" + uuid.uuid4().hex[:16]
        self.settings = DatabaseSettings(url=server_url(backend, self.name))
        # Children before parents, so DELETE never trips a foreign key (MySQL turns checks off anyway).
        order = reversed(pw.sort_models(ALL_MODELS))
        self.tables = [m._meta.table_name for m in order if m is not SchemaVersion]
        self.schema: tuple[Any, ...] = ()
        self._admin: Any = None

    def create(self) -> None:
        create_server_database(self.backend, self.name)
        database = init_database(self.settings)
        try:
            migrate(database)
        finally:
            database.close_all()
        self.schema = self._schema()

    def drop(self) -> None:
        self._close_admin()
        drop_server_database(self.backend, self.name)

    def reset(self) -> None:
        """Empty every table and restart its ids; rebuild the database if a test changed its schema."""
        try:
            self._reset()
        except Exception:  # noqa: BLE001 - a dead admin connection (server restarted), a lock: retry once
            self._close_admin()
            kill_sessions(self.backend, self.name)  # leftovers of the last test that hold locks
            self._reset()

    def _reset(self) -> None:
        if self._schema() != self.schema:
            self.drop()
            self.create()
            return
        statements = self._cleanup_statements()
        if statements:
            with self._cursor() as cur:
                for statement in statements:
                    cur.execute(statement)

    def _cleanup_statements(self) -> list[str]:
        with self._cursor() as cur:
            if self.backend == "postgresql":
                probes = [f"SELECT 't', '{t}' WHERE EXISTS (SELECT 1 FROM \"{t}\")" for t in self.tables]
                cur.execute("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
                probes += [f"SELECT 's', '{s}' FROM \"{s}\" WHERE is_called" for (s,) in cur.fetchall()]
                cur.execute(" UNION ALL ".join(probes))
                dirty = cur.fetchall()
                statements = [f'DELETE FROM "{t}"' for t in self.tables if ("t", t) in dirty]
                restarts = [f"SELECT setval('\"{s}\"', 1, false)" for kind, s in dirty if kind == "s"]
                return statements + restarts
            probes = [f"SELECT '{t}' FROM DUAL WHERE EXISTS (SELECT 1 FROM `{t}`)" for t in self.tables]
            cur.execute(" UNION ALL ".join(probes))
            filled = {t for (t,) in cur.fetchall()}
            cur.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s AND auto_increment > 1",
                (self.name,),
            )
            moved = {t for (t,) in cur.fetchall()} - {SchemaVersion._meta.table_name}
        if not (filled or moved):
            return []
        statements = ["SET FOREIGN_KEY_CHECKS = 0"]
        statements += [f"DELETE FROM `{t}`" for t in self.tables if t in filled]
        statements += [f"ALTER TABLE `{t}` AUTO_INCREMENT = 1" for t in self.tables if t in moved]
        return [*statements, "SET FOREIGN_KEY_CHECKS = 1"]

    def _schema(self) -> tuple[Any, ...]:
        """The tables and the recorded schema versions: what a test must not have changed."""
        with self._cursor() as cur:
            if self.backend == "postgresql":
                cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
            else:
                cur.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1",
                    (self.name,),
                )
            tables = tuple(row[0] for row in cur.fetchall())
            versions: tuple[Any, ...] = ()
            if SchemaVersion._meta.table_name in tables:
                cur.execute("SELECT version FROM schema_version ORDER BY version")
                versions = tuple(row[0] for row in cur.fetchall())
        return tables, versions

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self._admin is None:
            self._admin = admin_connection(self.backend, self.name)
            with self._admin.cursor() as cur:
                if self.backend == "postgresql":
                    cur.execute(f"SET lock_timeout = '{int(self.lock_timeout * 1000)}ms'")
                else:
                    wait = max(1, round(self.lock_timeout))  # whole seconds only
                    cur.execute(f"SET SESSION lock_wait_timeout = {wait}, innodb_lock_wait_timeout = {wait}")
                    try:  # MySQL 8 caches information_schema.tables.auto_increment; MariaDB has no cache
                        cur.execute("SET SESSION information_schema_stats_expiry = 0")
                    except Exception:  # noqa: BLE001 - MariaDB: unknown variable
                        pass
        with self._admin.cursor() as cur:
            yield cur

    def _close_admin(self) -> None:
        admin, self._admin = self._admin, None
        try:
            admin.close()
        except Exception:  # noqa: BLE001 - None, or already broken
            pass


@contextmanager
def shared_database(backend: str) -> Iterator[SharedDatabase]:
    """A migrated server database for a whole test session, dropped at the end."""
    shared = SharedDatabase(backend)
    shared.create()
    try:
        yield shared
    finally:
        shared.drop()


def main(argv: list[str]) -> int:
    """``unreachable <backend>``: print the reason and exit 0 when it cannot be used, else exit 1."""
    if len(argv) != 2 or argv[0] != "unreachable" or argv[1] not in BACKENDS:
        print(
            f"usage: python -m tests.support.databases unreachable {{{','.join(BACKENDS)}}}", file=sys.stderr
        )
        return 2
    why = unreachable_reason(argv[1])
    if why:
        print(why)
    return 0 if why else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
