"""SQLite WAL checkpoints on a background thread, so requests do not wait for them.

By default SQLite checkpoints inside the commit that takes the WAL past 1,000 pages: that commit copies
the pages into the database file and fsyncs twice while it holds the writer lock, and every writer of
every process queues behind it (~4 ms, five times a second under load: a nonce per request writes
~1.4 WAL pages).

``WalCheckpointer`` checkpoints every ``interval`` seconds on a connection of its own, in two passes:
1. PASSIVE, without the writer lock: copies what the WAL holds while writers keep appending.
2. PASSIVE again, holding the writer lock (models/writer_lock.py): copies the few pages written during
   the first pass. With the whole WAL copied and no writer in between, the next writer starts the WAL
   over from its beginning, so it does not grow. A checkpoint copied under the lock alone would stall
   writers for the whole copy, which is what the default does.
SQLite's own automatic checkpoint stays as the safety net (``AUTOCHECKPOINT_FALLBACK`` pages in
models/db.py) if this thread falls behind.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from contextlib import AbstractContextManager
from typing import Any

log = logging.getLogger(__name__)

RESTART_FRAMES = 4096  # 16 MB of WAL: then the second pass, so the WAL starts over


class WalCheckpointer:
    def __init__(
        self,
        path: str,
        interval: float,
        writer_lock: AbstractContextManager[Any],
        restart_frames: int = RESTART_FRAMES,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval: must be > 0")
        self._path = path
        self._restart_frames = restart_frames
        self._interval = interval
        self._writer_lock = writer_lock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.checkpoints = 0  # completed two-pass checkpoints

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def checkpoint(self, connection: sqlite3.Connection) -> bool:
        """Copy the WAL into the database; under the writer lock too once the WAL is long enough to start
        over. False when SQLite reported another checkpoint (another process's) running."""
        frames = _passive(connection)
        if frames is None:
            return False
        if frames >= self._restart_frames:
            with self._writer_lock:
                if _passive(connection) is None:
                    return False
        self.checkpoints += 1
        return True

    def _loop(self) -> None:
        try:
            connection = sqlite3.connect(self._path, timeout=0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            log.warning("WAL checkpoints stay with SQLite's commits: cannot open %s (%s)", self._path, e)
            return
        try:
            while not self._stop.wait(self._interval):
                try:
                    self.checkpoint(connection)
                except sqlite3.Error as e:  # e.g. the disk is full: SQLite's own checkpoints still run
                    log.warning("WAL checkpoint failed: %s", e)
        finally:
            connection.close()


def _passive(connection: sqlite3.Connection) -> int | None:
    """One PASSIVE checkpoint, which never waits for readers or writers: the WAL's length in pages, or
    None for SQLITE_BUSY (another checkpoint runs)."""
    try:
        busy, frames, _ = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    except sqlite3.OperationalError as e:
        log.debug("WAL checkpoint skipped: %s", e)
        return None
    return None if busy else int(frames)
