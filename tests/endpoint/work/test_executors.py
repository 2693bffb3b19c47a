"""DatabaseRunner: blocking work off the IOLoop in pooled connections, one retry after a lost connection."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import peewee as pw
import pytest
import requests

from endpoint.errors import Unavailable
from endpoint.work.executors import DatabaseRunner, cpu_threads
from models import Consumer, db, init_database
from models.db import DatabaseSettings, unit_of_work
from tests.support.builders import make_settings
from tests.support.databases import database_name, kill_sessions
from tests.support.live_endpoint import LiveEndpoint, live_endpoint
from tests.support.postgres_restart import restart_blocker, restart_postgresql
from tests.support.two_partner_tenancy import build_tenancy


@pytest.fixture
def runner(database: pw.Database) -> Iterator[DatabaseRunner]:
    runner = DatabaseRunner(2)
    yield runner
    runner.shutdown()


def pooled_in_use() -> int:
    return len(db.obj._in_use)  # playhouse.pool's checked-out connections


def test_runs_in_a_worker_thread_inside_an_open_pooled_connection(runner: DatabaseRunner) -> None:
    before = pooled_in_use()  # the fixture's own connection, held by the test thread

    def probe() -> dict[str, Any]:
        return {
            "thread": threading.current_thread(),
            "open": not db.is_closed(),  # opened for us before any query ran
            "in_use": pooled_in_use(),
            "one": db.execute_sql("SELECT 1").fetchone()[0],
        }

    async def main() -> tuple[threading.Thread, dict[str, Any]]:
        return threading.current_thread(), await runner.run(probe)

    loop_thread, seen = asyncio.run(main())
    assert seen["thread"] is not loop_thread and seen["thread"].name.startswith("db")
    assert seen["open"] and seen["one"] == 1
    assert seen["in_use"] == before + 1
    assert pooled_in_use() == before  # returned to the pool afterwards
    assert db.obj._connections  # ... kept for reuse, not closed


def test_inline_units_run_on_the_loop_and_keep_one_connection_until_shutdown(database: pw.Database) -> None:
    """SQLite's units run on the IOLoop thread: its connection stays checked out between them (taking it
    from the pool every time cost ~4 % of a request), and shutdown gives it back."""
    runner = DatabaseRunner(1, inline=True)

    def probe() -> tuple[threading.Thread, Any]:
        return threading.current_thread(), db.obj.connection()

    async def main() -> tuple[threading.Thread, list[tuple[threading.Thread, Any]], int]:
        seen = [await runner.run(probe), await runner.run(probe)]
        held = pooled_in_use()
        runner.shutdown()
        return threading.current_thread(), seen, held

    before = pooled_in_use()  # the fixture's connection, held by the test thread
    with ThreadPoolExecutor(1) as pool:  # a loop thread of its own, as the server's
        loop_thread, seen, held = pool.submit(asyncio.run, main()).result(10)
    assert [thread for thread, _ in seen] == [loop_thread, loop_thread]
    assert seen[0][1] is seen[1][1] and held == before + 1
    assert pooled_in_use() == before  # given back by shutdown


def test_passes_args_and_kwargs(runner: DatabaseRunner) -> None:
    def combine(a: int, b: int, *, scale: int = 1, suffix: str = "") -> str:
        return f"{(a + b) * scale}{suffix}"

    assert asyncio.run(runner.run(combine, 1, 2, scale=10, suffix="!")) == "30!"


def test_exceptions_propagate_and_the_connection_still_returns(runner: DatabaseRunner) -> None:
    before = pooled_in_use()

    def fail() -> None:
        db.execute_sql("SELECT 1")
        raise LookupError("no such row")

    with pytest.raises(LookupError, match="no such row"):
        asyncio.run(runner.run(fail))
    assert pooled_in_use() == before


def test_the_loop_stays_free_while_a_function_runs(runner: DatabaseRunner) -> None:
    release = threading.Event()

    async def main() -> list[str]:
        order: list[str] = []
        job = asyncio.ensure_future(runner.run(release.wait, 5))
        await asyncio.sleep(0.01)
        order.append("loop ran")  # would not happen before the job if it blocked the loop
        release.set()
        await job
        order.append("job done")
        return order

    assert asyncio.run(main()) == ["loop ran", "job done"]


def test_submitting_after_shutdown_fails(database: pw.Database) -> None:
    runner = DatabaseRunner(1)
    runner.shutdown()
    with pytest.raises(RuntimeError):
        asyncio.run(runner.run(lambda: None))


def test_cpu_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cpu_threads(3) == 3
    assert cpu_threads(0) == os.cpu_count()
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert cpu_threads(0) == 1


# -- lost connections and the bounded pool ----------------------------------------------------------
@pytest.fixture
def server_runner(runner: DatabaseRunner, db_settings: DatabaseSettings) -> DatabaseRunner:
    if db_settings.backend == "sqlite":
        pytest.skip("SQLite has no server connections to lose")
    db.close()  # the test thread's own connection: every call below checks out its own
    return runner


def kill_all(db_settings: DatabaseSettings) -> int:
    return kill_sessions(db_settings.backend, database_name(db_settings))


def test_a_call_whose_connection_dies_runs_again_on_a_fresh_one(
    server_runner: DatabaseRunner, db_settings: DatabaseSettings, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def read() -> int:
        calls.append(1)
        if len(calls) == 1:
            kill_all(db_settings)  # as if the server restarted right after the check-out
        return int(Consumer.select().count())

    assert asyncio.run(server_runner.run(read)) == 0
    assert len(calls) == 2
    assert any("running the unit of work again" in r.getMessage() for r in caplog.records)


def test_a_call_that_may_have_written_is_not_run_again(
    server_runner: DatabaseRunner, db_settings: DatabaseSettings
) -> None:
    calls: list[int] = []

    def write_then_lose() -> None:
        calls.append(1)
        Consumer.create(key=f"written-{len(calls)}")  # autocommit: it stays, whatever happens next
        kill_all(db_settings)
        Consumer.select().count()

    with pytest.raises(Unavailable) as caught:
        asyncio.run(server_runner.run(write_then_lose))
    assert len(calls) == 1  # never twice: the write may not be repeated
    assert caught.value.reason.startswith("database connection lost (")
    assert isinstance(caught.value.__cause__, pw.OperationalError | pw.InterfaceError)
    with unit_of_work():
        assert [c.key for c in Consumer.select()] == ["written-1"]


def test_a_transaction_cut_before_commit_runs_again_and_writes_once(
    server_runner: DatabaseRunner, db_settings: DatabaseSettings
) -> None:
    calls: list[int] = []

    def transfer() -> None:
        calls.append(1)
        with db.atomic():
            Consumer.create(key="in-a-transaction")
            if len(calls) == 1:
                kill_all(db_settings)
                Consumer.select().count()

    asyncio.run(server_runner.run(transfer))
    assert len(calls) == 2
    with unit_of_work():
        assert Consumer.select().count() == 1


def test_a_second_loss_in_a_row_is_unavailable(
    server_runner: DatabaseRunner, db_settings: DatabaseSettings
) -> None:
    calls: list[int] = []

    def always_lost() -> None:
        calls.append(1)
        kill_all(db_settings)
        db.execute_sql("SELECT 1")

    with pytest.raises(Unavailable):
        asyncio.run(server_runner.run(always_lost))
    assert len(calls) == 2  # one retry, not a loop


def test_other_database_errors_are_neither_retried_nor_translated(runner: DatabaseRunner) -> None:
    calls: list[int] = []

    def duplicate() -> None:
        calls.append(1)
        Consumer.create(key="same")
        Consumer.create(key="same")

    with pytest.raises(pw.IntegrityError):
        asyncio.run(runner.run(duplicate))
    assert len(calls) == 1


def test_an_exhausted_pool_is_unavailable_after_pool_timeout(db_settings: DatabaseSettings) -> None:
    database = init_database(DatabaseSettings(url=db_settings.url, max_connections=1, pool_timeout=0.3))
    runner, busy, release = DatabaseRunner(2), threading.Event(), threading.Event()

    def hold() -> None:
        busy.set()
        release.wait(5)

    async def main() -> float:
        holder = asyncio.ensure_future(runner.run(hold))
        await asyncio.to_thread(busy.wait, 5)
        started = time.monotonic()
        try:
            with pytest.raises(Unavailable) as caught:
                await runner.run(lambda: None)
            assert "no database connection became free within 0.3s" in caught.value.reason
            assert caught.value.message == "Service unavailable."  # what a client would read
            return time.monotonic() - started
        finally:
            release.set()
            await holder

    try:
        waited = asyncio.run(main())
    finally:
        runner.shutdown()
        database.close_all()
    assert 0.3 <= waited < 2.0


# -- the whole endpoint while the server cuts its connections ---------------------------------------
@pytest.fixture
def live_server(database: pw.Database, db_settings: DatabaseSettings) -> Iterator[LiveEndpoint]:
    """A serving endpoint on a server backend, with the callback tenancy in place."""
    if db_settings.backend == "sqlite":
        pytest.skip("SQLite has no server connections to lose")
    build_tenancy()
    db.close()
    with live_endpoint(make_settings(database=db_settings)) as live:
        yield live


def statuses(live: LiveEndpoint, count: int) -> list[int]:
    return [live.callback("a.p.enablement.read.v1.0").status_code for _ in range(count)]


def test_the_endpoint_rides_out_every_connection_being_killed_mid_run(
    live_server: LiveEndpoint,
    db_settings: DatabaseSettings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sleep = "SELECT pg_sleep(0.4)" if db_settings.backend == "postgresql" else "SELECT SLEEP(0.4)"
    monkeypatch.setattr("endpoint.web.health._ping_database", lambda: db.execute_sql(sleep))
    assert statuses(live_server, 5) == [200] * 5  # the pool now holds idle connections as well
    with ThreadPoolExecutor(4) as pool:
        pings = [pool.submit(requests.get, live_server.base_url + "/healthz", timeout=10) for _ in range(4)]
        time.sleep(0.2)  # every ping is inside its statement now
        killed = kill_all(db_settings)  # busy and idle connections alike, and the test's own
        during = [ping.result().status_code for ping in pings]
    assert killed >= 4
    assert during == [200] * 4  # each read ran again on a fresh connection: no client saw the kill
    assert statuses(live_server, 10) == [200] * 10  # dead idle connections were never handed out
    retries = [r for r in caplog.records if "running the unit of work again" in r.getMessage()]
    assert len(retries) >= 4


def test_the_endpoint_recovers_after_postgresql_restarts(
    live_server: LiveEndpoint, db_settings: DatabaseSettings
) -> None:
    if db_settings.backend != "postgresql":
        pytest.skip("restarts the local PostgreSQL cluster")
    blocker = restart_blocker()
    if blocker:
        pytest.skip(blocker)
    assert statuses(live_server, 5) == [200] * 5
    seen: list[int] = []
    stop = threading.Event()

    def poll() -> None:  # health checks all through the restart: 200 or a clean 503, never a 500
        while not stop.is_set():
            seen.append(requests.get(live_server.base_url + "/healthz", timeout=10).status_code)
            time.sleep(0.02)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        restart_postgresql()
        time.sleep(0.2)
    finally:
        stop.set()
        poller.join(15)
    assert statuses(live_server, 10) == [200] * 10  # no endpoint restart needed
    assert set(seen) <= {200, 503} and seen[-1] == 200
