"""The SQLite writer queue: one lock that the writers of every endpoint process wait on in the kernel.

SQLite allows one writer per database file. A writer that finds the lock taken waits in SQLite's busy
handler, which sleeps 1, 2, 5 ... 100 ms between tries, while the write it waits for takes tens of
microseconds (a nonce INSERT: ~25 us). With two endpoint processes each recording a nonce per request,
those sleeps left a fifth of the machine idle under load (``bench.callback_bench --workers 2``).

``WriterLock`` queues writers instead: a re-entrant thread lock inside the process, then an exclusive
``flock`` on a file beside the database across processes. A waiter blocks in ``flock`` and the kernel
wakes it the moment the holder lets go. Writers that do not take it (another program, the sqlite3 shell)
still meet SQLite's busy timeout, as before. flock belongs to the open file description, which a forked
child shares with its parent, so each process opens the file itself on first use.
"""

from __future__ import annotations

import fcntl
import os
import threading
from typing import Any


class WriterLock:
    """Re-entrant in a thread; exclusive across threads (RLock) and processes (flock on ``path``).

    ``path`` None: in-process only (an in-memory database has no other process to meet).
    """

    def __init__(self, path: str | None) -> None:
        self._path = path
        self._thread_lock = threading.RLock()
        self._depth = 0  # only the thread holding _thread_lock reads or writes it
        self._fd: int | None = None
        self._fd_pid = 0

    def acquire(self, blocking: bool = True) -> bool:
        if not self._thread_lock.acquire(blocking):
            return False
        if self._depth == 0 and self._path is not None:
            try:
                if not self._lock_file(blocking):
                    self._thread_lock.release()
                    return False
            except BaseException:
                self._thread_lock.release()
                raise
        self._depth += 1
        return True

    def release(self) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def close(self) -> None:
        """Close this process's lock file (the lock must not be held)."""
        if self._fd is not None and self._fd_pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def _lock_file(self, blocking: bool) -> bool:
        assert self._path is not None
        if self._fd is None or self._fd_pid != os.getpid():
            # A child of a fork must not share its parent's open file description (and so its flock).
            if self._fd is not None:
                os.close(self._fd)  # the inherited copy; the parent's own stays open
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._fd_pid = os.getpid()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
