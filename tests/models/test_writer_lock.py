"""The SQLite writer queue: exclusive across threads and processes, re-entrant in a thread, fork-safe."""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from models.db import DatabaseSettings, open_database
from models.sqlite import WRITER_LOCK_SUFFIX
from models.writer_lock import WriterLock


def in_thread(fn: Callable[[], object]) -> object:
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(fn()))
    thread.start()
    thread.join(5)
    return result[0]


def _try_in_process(path: str) -> bool:
    """In a new process (spawned: nothing shared): can a lock on ``path`` be taken right now?"""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return bool(pool.apply(_try_lock, (path,)))


def _try_lock(path: str) -> bool:
    lock = WriterLock(path)
    taken = lock.acquire(blocking=False)
    if taken:
        lock.release()
    lock.close()
    return taken


def test_another_process_cannot_take_it_while_held(tmp_path: Path) -> None:
    path = str(tmp_path / "db-writer.lock")
    lock = WriterLock(path)
    with lock:
        assert _try_in_process(path) is False  # a thread lock alone would let the other process in
    assert _try_in_process(path) is True
    lock.close()


def test_a_forked_child_opens_its_own_file(tmp_path: Path) -> None:
    """flock belongs to the open file description, which fork shares: the child must not reuse it."""
    lock = WriterLock(str(tmp_path / "db-writer.lock"))
    with lock:  # the parent opens its descriptor before the fork
        pass
    read, write = os.pipe()
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: wait until the parent holds the lock, then try it
        try:
            os.read(go_read, 1)
            taken = lock.acquire(blocking=False)
            os.write(write, b"1" if taken else b"0")
        finally:
            os._exit(0)
    try:
        with lock:
            os.write(go_write, b"x")
            answer = os.read(read, 1)
    finally:
        os.waitpid(pid, 0)
        for fd in (read, write, go_read, go_write):
            os.close(fd)
        lock.close()
    assert answer == b"0"


def test_reentrant_in_a_thread_exclusive_across_threads(tmp_path: Path) -> None:
    lock = WriterLock(str(tmp_path / "db-writer.lock"))
    with lock:
        with lock:
            assert in_thread(lambda: lock.acquire(blocking=False)) is False
        assert in_thread(lambda: lock.acquire(blocking=False)) is False  # still held once
        assert _try_in_process(str(tmp_path / "db-writer.lock")) is False
    assert _try_in_process(str(tmp_path / "db-writer.lock")) is True
    lock.close()


def test_a_blocked_writer_gets_it_when_released(tmp_path: Path) -> None:
    lock = WriterLock(str(tmp_path / "db-writer.lock"))
    order: list[str] = []
    lock.acquire()
    waiter = threading.Thread(target=lambda: (lock.acquire(), order.append("waiter"), lock.release()))
    waiter.start()
    order.append("holder")
    lock.release()
    waiter.join(5)
    assert order == ["holder", "waiter"]
    lock.close()


def test_in_memory_needs_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    lock = WriterLock(None)
    with lock:
        assert in_thread(lambda: lock.acquire(blocking=False)) is False
    assert list(tmp_path.iterdir()) == []


def test_a_sqlite_file_gets_its_lock_file_beside_it_private(tmp_path: Path) -> None:
    database = open_database(DatabaseSettings(url=f"sqlite:///{tmp_path / 'c.db'}"))
    with database.connection_context(), database.atomic():
        database.execute_sql("CREATE TABLE t (x INTEGER)")
    lock_file = tmp_path / f"c.db{WRITER_LOCK_SUFFIX}"
    assert lock_file.exists()
    assert lock_file.stat().st_mode & 0o077 == 0
    assert _try_in_process(str(lock_file)) is True  # released after the transaction
    database.close_all()
