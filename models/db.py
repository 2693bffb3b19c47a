"""Database binding: one DatabaseProxy, a URL-chosen pooled backend, and the transaction helpers."""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import peewee as pw
from playhouse import db_url
from playhouse.pool import MaxConnectionsExceeded

from models.backends import ServerMySQLDatabase, ServerPostgresqlDatabase, connection_lost
from models.sqlite import BULK_CACHE_SIZE, SQLITE_CACHE_SIZE, open_sqlite, sqlite_path

log = logging.getLogger(__name__)

db = pw.DatabaseProxy()

_SERVER_CLASSES: dict[str, type[pw.Database]] = {
    "postgresql": ServerPostgresqlDatabase,
    "mysql": ServerMySQLDatabase,
}
_SCHEMES = {
    "sqlite": "sqlite+pool",
    "postgres": "postgresql+pool",
    "postgresql": "postgresql+pool",
    "mysql": "mysql+pool",
}
SYNCHRONOUS_MODES = ("normal", "full")


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = "sqlite:///var/connector.db"
    max_connections: int = 16  # per process; the endpoint's database executor is sized to match
    pool_timeout: float = 10.0  # seconds a unit of work waits for a pooled connection
    stale_timeout: float = 300.0  # recycle server connections older than this
    # WAL + NORMAL does not fsync each commit: a power loss (not a process crash) may drop the last
    # commits, i.e. recently accepted nonces. "full" closes that replay window at a per-commit fsync.
    sqlite_synchronous: str = "normal"
    # Seconds between WAL checkpoints on the endpoint's background thread (models/checkpointer.py), so
    # no request pays for one. SQLite's own, inside a commit, then happen only past 10,000 WAL pages (a
    # safety net; also in processes without the thread: the outbox worker, CLI commands). 0: SQLite's
    # default, a checkpoint inside the commit that fills 1,000 pages.
    sqlite_checkpoint_interval: float = 0.1
    # PostgreSQL: the hot queries prepared once per connection (parsed and planned once); switch off
    # behind a pooler in transaction mode (pgbouncer), which cannot keep prepared statements.
    server_prepared_statements: bool = True

    def __post_init__(self) -> None:
        scheme = urlsplit(self.url).scheme.split("+")[0]
        if scheme not in _SCHEMES:
            raise ValueError(f"url: unsupported scheme {scheme!r} (use sqlite:///, postgresql://, mysql://)")
        if self.max_connections < 1:
            raise ValueError("max_connections: must be >= 1")
        if self.pool_timeout <= 0:
            raise ValueError("pool_timeout: must be > 0")
        if self.sqlite_synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"sqlite_synchronous: must be one of {', '.join(SYNCHRONOUS_MODES)}")
        if self.sqlite_checkpoint_interval < 0:
            raise ValueError("sqlite_checkpoint_interval: must be >= 0 (0: SQLite checkpoints on commit)")

    @property
    def backend(self) -> str:
        return _SCHEMES[urlsplit(self.url).scheme.split("+")[0]].split("+")[0]


class BaseModel(pw.Model):
    class Meta:
        database = db
        legacy_table_names = False


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> dt.datetime:
    """Naive UTC: the one time representation stored by every backend alike."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def open_database(settings: DatabaseSettings) -> pw.Database:
    """Build the pooled database named by ``settings.url`` (not yet connected)."""
    parts = urlsplit(settings.url)
    base_scheme = parts.scheme.split("+")[0]
    pool = {"max_connections": settings.max_connections, "timeout": settings.pool_timeout}
    if base_scheme == "sqlite":
        interval = settings.sqlite_checkpoint_interval
        return open_sqlite(sqlite_path(settings.url), settings.sqlite_synchronous, interval, pool)
    # Passwords in URLs are percent-encoded; playhouse only decodes them when asked. The "+pool" scheme
    # keeps the "password" keyword (db_url renames it "passwd" for a plain mysql:// URL).
    pooled_url = settings.url.replace(parts.scheme, _SCHEMES[base_scheme], 1)
    params = db_url.parse(pooled_url, unquote_password=True, unquote_user=True)
    if not params.get("database"):
        raise ValueError("url: names no database (postgresql://host/dbname)")
    if settings.backend == "postgresql":
        params["server_prepares"] = settings.server_prepared_statements
    return _SERVER_CLASSES[settings.backend](stale_timeout=settings.stale_timeout, **pool, **params)


class DatabaseMissing(pw.OperationalError):
    """A command that only reads or edits existing data was pointed at a SQLite file that is not there."""


def init_database(settings: DatabaseSettings, *, create: bool = True) -> pw.Database:
    """Bind the shared proxy to the database named by the settings and return it.

    ``create=False``: a SQLite file must already exist (commands that list or edit data must not leave
    an empty database behind a mistyped path). :raise DatabaseMissing:
    """
    if not create and settings.backend == "sqlite":
        path = sqlite_path(settings.url)
        if path != ":memory:" and not os.path.exists(path):
            raise DatabaseMissing(f"no such database file: {path}")
    database = open_database(settings)
    db.initialize(database)
    return database


@contextmanager
def serialized_write() -> Iterator[None]:
    """For a single-statement write outside a transaction: queue like ``atomic()`` blocks do.

    The statement is atomic on its own; only SQLite's single writer needs the queue
    (SerializedSqliteDatabase), and BEGIN/COMMIT around one INSERT would be two extra round trips.
    """
    lock = getattr(db.obj, "write_lock", None)
    if lock is None:
        yield
        return
    with lock:
        yield


class PoolExhausted(pw.OperationalError):
    """No pooled connection became free within ``pool_timeout``: every one was busy."""


@contextmanager
def unit_of_work(keep_open: bool = False) -> Iterator[pw.Database]:
    """One pooled connection for the calling thread, returned to the pool afterwards.

    Every executor job that touches the database runs inside one of these; nothing awaits inside it.
    When all ``max_connections`` are busy it waits up to ``pool_timeout``.
    ``keep_open``: the connection stays with the thread for its next unit (the IOLoop's inline units:
    taking it from the pool and giving it back cost ~4 % of a request); a unit that fails gives it back,
    so a broken connection is never used twice.
    :raise PoolExhausted: when none became free in time.
    """
    database = db.obj
    if database.is_closed():  # the outermost unit of this thread; a nested one shares its connection
        started = getattr(database, "unit_started", None)
        if started is not None:
            started()
        try:
            database.connect()
        except MaxConnectionsExceeded as e:
            raise PoolExhausted(
                f"no database connection became free within {database._wait_timeout:g}s "
                f"(all {database._max_connections} pooled connections busy)"
            ) from e
    if keep_open:
        try:
            yield database
        except BaseException:
            database.close()
            raise
        return
    with database.connection_context():
        yield database


@contextmanager
def bounded_page_cache() -> Iterator[None]:
    """Run a bulk statement (the minutely purge) with this thread's SQLite page cache capped at 2 MiB.

    A DELETE that scans a whole table and dirties most of its pages (the nonce purge: the keys are random)
    otherwise fills the connection's cache to its 16 MB limit. SQLite frees those pages soon after, but
    the allocator keeps the peak resident: the SQLite soak grew by 16 MB when its first purge ran. With
    the cap, the pages are read and written through (dirty ones spill to the WAL before the commit).
    No-op on server databases.
    """
    database = db.obj
    if not isinstance(database, pw.SqliteDatabase):
        yield
        return
    database.execute_sql(f"PRAGMA cache_size = {BULK_CACHE_SIZE}")
    try:
        yield
    finally:
        database.execute_sql(f"PRAGMA cache_size = {SQLITE_CACHE_SIZE}")


def release_connection() -> None:
    """Give the calling thread's kept connection (``unit_of_work(keep_open=True)``) back to the pool."""
    if not db.obj.is_closed():
        db.obj.close()


def retry_safe(error: BaseException) -> bool:
    """Whether the unit of work that just failed in this thread with ``error`` may simply run again.

    Only when its connection was lost and nothing it sent can have taken effect (models/backends.py).
    """
    may_have_effects = getattr(db.obj, "unit_may_have_effects", None)
    return may_have_effects is not None and connection_lost(error) and not may_have_effects()
