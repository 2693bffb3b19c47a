"""Database binding: one DatabaseProxy, a URL-chosen pooled backend, and the transaction helpers."""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import peewee as pw
from playhouse import db_url
from playhouse.pool import MaxConnectionsExceeded, PooledSqliteDatabase

from models.backends import ServerMySQLDatabase, ServerPostgresqlDatabase, connection_lost
from models.writer_lock import WriterLock

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
# SQLite's page cache per connection (negative: KiB), and the cap while a bulk statement runs.
SQLITE_CACHE_SIZE = -16000
BULK_CACHE_SIZE = -2048
AUTOCHECKPOINT_FALLBACK = 10_000  # pages (40 MB of WAL)
WRITER_LOCK_SUFFIX = "-writer.lock"  # beside SQLite's own -wal and -shm


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
    # no request pays for one; 0 leaves them to SQLite, inside the commit that fills the WAL.
    sqlite_checkpoint_interval: float = 0.1

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


class SerializedSqliteDatabase(PooledSqliteDatabase):
    """Pooled SQLite whose write transactions queue on the writer lock (models/writer_lock.py).

    SQLite allows one writer; a second one waits in its busy handler, which sleeps with backoff
    (1, 2, 5 ... 100 ms) instead of queueing, so under concurrency writers waste time asleep and the
    tail latency explodes. Taking the writer lock around every ``atomic()`` block (and every
    ``serialized_write()``) makes the writers of all endpoint processes queue and wake at once.
    """

    def __init__(self, database: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self.write_lock = WriterLock(None if database == ":memory:" else database + WRITER_LOCK_SUFFIX)

    def atomic(self, *args: Any, **kwargs: Any) -> Any:
        return _LockedAtomic(self.write_lock, super().atomic(*args, **kwargs))


class _LockedAtomic:
    def __init__(self, lock: WriterLock, inner: Any) -> None:
        self._lock = lock
        self._inner = inner

    def __enter__(self) -> Any:
        self._lock.acquire()
        try:
            return self._inner.__enter__()
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self._inner.__exit__(*exc)
        finally:
            self._lock.release()


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL (``:memory:`` when none)."""
    parts = urlsplit(url)
    return (parts.path[1:] if parts.path.startswith("/") else parts.path) or ":memory:"


def _private_sqlite_file(path: str) -> None:
    """Create the database file 0600 before SQLite does; its -wal and -shm files take the main file's mode.

    The file holds the OAuth consumer secrets and the password hashes. An existing file (or -wal/-shm)
    that group or others may read is left as it is, with a warning naming the fix.
    """
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        return
    except FileExistsError:
        pass
    for candidate in (path, path + "-wal", path + "-shm"):
        try:
            mode = os.stat(candidate).st_mode & 0o777
        except FileNotFoundError:
            continue
        if mode & 0o077:
            log.warning(
                "%s is readable by group or others (mode %03o) but holds consumer secrets and password "
                "hashes: run chmod 600 %s",
                candidate,
                mode,
                candidate,
            )


def open_database(settings: DatabaseSettings) -> pw.Database:
    """Build the pooled database named by ``settings.url`` (not yet connected)."""
    parts = urlsplit(settings.url)
    base_scheme = parts.scheme.split("+")[0]
    pool = {"max_connections": settings.max_connections, "timeout": settings.pool_timeout}
    if base_scheme == "sqlite":
        path = sqlite_path(settings.url)
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
            _private_sqlite_file(path)
        return SerializedSqliteDatabase(
            path,
            pragmas={
                "journal_mode": "wal",
                "synchronous": settings.sqlite_synchronous,
                "busy_timeout": 5000,
                "foreign_keys": 1,
                "cache_size": SQLITE_CACHE_SIZE,
                "wal_autocheckpoint": _autocheckpoint_pages(settings),
            },
            # BEGIN IMMEDIATE: a transaction that reads then writes cannot hit SQLITE_BUSY_SNAPSHOT.
            lock_type="IMMEDIATE",
            # The pool hands a connection to one thread at a time, but not always the thread that
            # opened it; sqlite3's same-thread guard would reject that hand-over.
            check_same_thread=False,
            **pool,
        )
    # Passwords in URLs are percent-encoded; playhouse only decodes them when asked. The "+pool" scheme
    # keeps the "password" keyword (db_url renames it "passwd" for a plain mysql:// URL).
    pooled_url = settings.url.replace(parts.scheme, _SCHEMES[base_scheme], 1)
    params = db_url.parse(pooled_url, unquote_password=True, unquote_user=True)
    if not params.get("database"):
        raise ValueError("url: names no database (postgresql://host/dbname)")
    return _SERVER_CLASSES[settings.backend](stale_timeout=settings.stale_timeout, **pool, **params)


def _autocheckpoint_pages(settings: DatabaseSettings) -> int:
    """SQLite checkpoints inside the commit that takes the WAL past this many pages: its default, or,
    when the endpoint's checkpointer runs (models/checkpointer.py), only as a safety net if it stalls."""
    return AUTOCHECKPOINT_FALLBACK if settings.sqlite_checkpoint_interval else 1000


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
