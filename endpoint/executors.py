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
from models.db import PoolExhausted, retry_safe, unit_of_work

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger(__name__)


class DatabaseRunner:
    """Runs synchronous database functions on a bounded thread pool, one pooled connection per call.

    Nothing ever awaits while a connection or transaction is open: the whole function runs in the
    worker thread inside ``unit_of_work()``. A call whose connection dies under it (the server restarted,
    its backend was killed) runs once more on a fresh connection when nothing it sent can have taken
    effect; otherwise, and when the pool stays exhausted past ``pool_timeout``, it raises Unavailable
    (503), never a bare driver error.
    """

    def __init__(self, threads: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="db")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """:raise Unavailable: the database cannot be reached, or no pooled connection became free."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: _in_unit(fn, *args, **kwargs))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)


def _in_unit(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    for attempt in (1, 2):
        try:
            with unit_of_work():
                return fn(*args, **kwargs)
        except PoolExhausted as e:
            raise Unavailable(reason=str(e)) from e
        except (pw.OperationalError, pw.InterfaceError) as e:
            if not connection_lost(e):
                raise
            if attempt == 1 and retry_safe(e):
                log.warning("database connection lost (%s); running the unit of work again", type(e).__name__)
                continue
            raise Unavailable(reason=f"database connection lost ({type(e).__name__})") from e
    raise AssertionError("unreachable")


def cpu_threads(requested: int) -> int:
    """``requested`` threads, or one per CPU core when it is 0."""
    return requested or (os.cpu_count() or 1)
