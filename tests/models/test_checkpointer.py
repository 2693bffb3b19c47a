"""WAL checkpoints off the request path: copied without the writer lock, the WAL kept short, the thread."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from models.checkpointer import WalCheckpointer
from models.db import DatabaseSettings, open_database
from models.sqlite import AUTOCHECKPOINT_FALLBACK


class CountingLock:
    def __init__(self) -> None:
        self.taken = 0
        self._lock = threading.RLock()

    def __enter__(self) -> None:
        self._lock.acquire()
        self.taken += 1

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A writer as the endpoint opens it: WAL, no automatic checkpoint before the fallback."""
    connection = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=wal")
    connection.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_FALLBACK}")
    connection.execute("CREATE TABLE t (x INTEGER PRIMARY KEY, pad TEXT)")
    yield connection
    connection.close()


def wal_frames(connection: sqlite3.Connection) -> tuple[int, int]:
    """(pages in the WAL, pages of it already copied), without copying anything."""
    _, frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return frames, copied


def commit_rows(connection: sqlite3.Connection, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        connection.execute("INSERT INTO t VALUES (?, ?)", (i, "x" * 3000))  # about a page each


def test_a_short_wal_is_copied_without_the_writer_lock(tmp_path: Path, writer: sqlite3.Connection) -> None:
    lock = CountingLock()
    checkpointer = WalCheckpointer(str(tmp_path / "c.db"), 1.0, lock, restart_frames=1_000)
    commit_rows(writer, 50)
    own = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    assert checkpointer.checkpoint(own) is True
    frames, copied = wal_frames(own)
    assert frames > 0 and copied == frames  # all copied into the database file
    assert lock.taken == 0  # writers never waited for it
    own.close()


def test_a_long_wal_starts_over_after_the_locked_pass(tmp_path: Path, writer: sqlite3.Connection) -> None:
    """The second pass runs under the writer lock, so the next commit restarts the WAL: it stays short."""
    lock = CountingLock()
    checkpointer = WalCheckpointer(str(tmp_path / "c.db"), 1.0, lock, restart_frames=100)
    own = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    for batch in range(5):
        commit_rows(writer, 150, start=batch * 150)
        assert checkpointer.checkpoint(own) is True
    assert lock.taken == 5
    commit_rows(writer, 1, start=10_000)
    frames, _ = wal_frames(own)
    assert frames < 10  # started over; without the checkpoints it would hold 750+ pages
    own.close()


def test_the_thread_checkpoints_until_closed(tmp_path: Path, writer: sqlite3.Connection) -> None:
    checkpointer = WalCheckpointer(str(tmp_path / "c.db"), 0.01, CountingLock())
    checkpointer.start()
    try:
        commit_rows(writer, 20)
        deadline = time.monotonic() + 5
        while checkpointer.checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert checkpointer.checkpoints > 0
        frames, copied = wal_frames(writer)
        assert copied == frames
    finally:
        checkpointer.close()
    done = checkpointer.checkpoints
    time.sleep(0.05)
    assert checkpointer.checkpoints == done


def test_a_checkpoint_running_elsewhere_is_skipped_not_waited_for(tmp_path: Path) -> None:
    checkpointer = WalCheckpointer(str(tmp_path / "c.db"), 1.0, CountingLock())

    class Busy:
        def execute(self, sql: str) -> Any:
            raise sqlite3.OperationalError("database table is locked")

    assert checkpointer.checkpoint(Busy()) is False  # type: ignore[arg-type]


def test_interval_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="interval"):
        WalCheckpointer(str(tmp_path / "c.db"), 0, CountingLock())


@pytest.mark.parametrize(("interval", "pages"), [(0.1, AUTOCHECKPOINT_FALLBACK), (0, 1000)])
def test_sqlite_checkpoints_in_commits_only_as_the_fallback(
    tmp_path: Path, interval: float, pages: int
) -> None:
    database = open_database(
        DatabaseSettings(url=f"sqlite:///{tmp_path / 'c.db'}", sqlite_checkpoint_interval=interval)
    )
    with database.connection_context():
        assert database.execute_sql("PRAGMA wal_autocheckpoint").fetchone() == (pages,)
    database.close_all()


def test_a_negative_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="sqlite_checkpoint_interval"):
        DatabaseSettings(sqlite_checkpoint_interval=-1)
