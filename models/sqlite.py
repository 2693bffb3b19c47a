"""Embedded SQLite as the endpoint opens it: WAL, a private file, writers queued on one lock."""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import urlsplit

from playhouse.pool import PooledSqliteDatabase

from models.writer_lock import WriterLock

log = logging.getLogger(__name__)

# SQLite's page cache per connection (negative: KiB), and the cap while a bulk statement runs.
SQLITE_CACHE_SIZE = -16000
BULK_CACHE_SIZE = -2048
AUTOCHECKPOINT_FALLBACK = 10_000  # pages (40 MB of WAL)
WRITER_LOCK_SUFFIX = "-writer.lock"  # beside SQLite's own -wal and -shm


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


def open_sqlite(
    path: str, synchronous: str, checkpoint_interval: float, pool: dict[str, Any]
) -> SerializedSqliteDatabase:
    """The pooled database on ``path`` (created 0600 with its directory), not yet connected."""
    if path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
        _private_sqlite_file(path)
    return SerializedSqliteDatabase(
        path,
        pragmas={
            "journal_mode": "wal",
            "synchronous": synchronous,
            "busy_timeout": 5000,
            "foreign_keys": 1,
            "cache_size": SQLITE_CACHE_SIZE,
            # SQLite checkpoints inside the commit that takes the WAL past this many pages: its default,
            # or, while the endpoint's checkpointer runs (models/checkpointer.py), only as a safety net.
            "wal_autocheckpoint": AUTOCHECKPOINT_FALLBACK if checkpoint_interval else 1000,
        },
        # BEGIN IMMEDIATE: a transaction that reads then writes cannot hit SQLITE_BUSY_SNAPSHOT.
        lock_type="IMMEDIATE",
        # The pool hands a connection to one thread at a time, but not always the thread that
        # opened it; sqlite3's same-thread guard would reject that hand-over.
        check_same_thread=False,
        **pool,
    )
