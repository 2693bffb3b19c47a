"""Bridges from the IOLoop to blocking work: the database executor and the password-hash executor."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

import peewee as pw

from endpoint.errors import Unavailable
from models.backends import connection_lost
from models.db import PoolExhausted, release_connection, retry_safe, unit_of_work

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger(__name__)


class DatabaseRunner:
    """Runs one synchronous database function per call -- a unit of work on one pooled connection.

    Two ways, chosen per backend (``server.db_mode``):
    - ``inline``: on the calling (IOLoop) thread. Embedded SQLite answers a request's statements in tens
      of microseconds, while a hop to a thread and back costs more than that in futex wake-ups and GIL
      hand-offs (measured: 1.9 ms of CPU and ~60 context switches per request with three hops, 1.07 ms
      and 0.1 inline). SQLite's writer lock is held for microseconds, so the loop never waits long.
    - ``threads``: on a bounded pool, for server databases, whose round trips would stall the loop.

    Nothing ever awaits while a connection or transaction is open: the whole function runs inside
    ``unit_of_work()``. A call whose connection dies under it (the server restarted, its backend was
    killed) runs once more on a fresh connection when nothing it sent can have taken effect; otherwise,
    and when the pool stays exhausted past ``pool_timeout``, it raises Unavailable (503), never a bare
    driver error.
    """

    def __init__(self, threads: int, *, inline: bool = False) -> None:
        self.inline = inline
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="db")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """:raise Unavailable: the database cannot be reached, or no pooled connection became free."""
        if self.inline:
            if self._closed:
                raise RuntimeError("the database runner is shut down")
            return _in_unit(fn, *args, _keep_open=True, **kwargs)
        return await self.run_in_thread(fn, *args, **kwargs)

    async def run_in_thread(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Always on the pool: for work that may take long whatever the backend (maintenance purges)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: _in_unit(fn, *args, **kwargs))

    def shutdown(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=True)
        if self.inline:  # the connection the inline units kept (a no-op when none is open)
            release_connection()


def database_unavailable(error: BaseException) -> Unavailable | None:
    """The 503 a database error stands for when the database cannot be reached (no pooled connection
    became free, the connection was lost or could not be made); None for any other error. For database
    work outside the runner (the APS job threads), so an outage is a 503 there too, never a 500."""
    if isinstance(error, PoolExhausted):
        return Unavailable(reason=str(error))
    if isinstance(error, pw.OperationalError | pw.InterfaceError) and connection_lost(error):
        return Unavailable(reason=f"database connection lost ({type(error).__name__})")
    return None


def _in_unit(fn: Callable[P, T], *args: P.args, _keep_open: bool = False, **kwargs: P.kwargs) -> T:
    for attempt in (1, 2):
        try:
            with unit_of_work(keep_open=_keep_open):
                return fn(*args, **kwargs)
        except (pw.OperationalError, pw.InterfaceError) as e:
            unavailable = database_unavailable(e)
            if unavailable is None:
                raise
            if attempt == 1 and not isinstance(e, PoolExhausted) and retry_safe(e):
                # Sampled like refused requests (endpoint/observability/logsetup.py): while the database is
                # down every unit comes here, and a line each would flood the log.
                log.warning(
                    "database connection lost (%s); running the unit of work again",
                    type(e).__name__,
                    extra={"rejection": f"database connection lost ({type(e).__name__}), unit run again"},
                )
                continue
            raise unavailable from e
    raise AssertionError("unreachable")


def cpu_threads(requested: int) -> int:
    """``requested`` threads, or one per CPU core when it is 0."""
    return requested or (os.cpu_count() or 1)
