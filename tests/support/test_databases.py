"""The suite's database isolation: every test gets empty tables and restarted ids, whatever ran before."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import peewee as pw
import pytest

from models import Consumer, ConsumerSecret, Nonce, OutboxItem, db, init_database
from models.db import DatabaseSettings, unit_of_work
from tests.support.builders import create_consumer
from tests.support.databases import SharedDatabase, main, selected_backend

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def shared(server_database: SharedDatabase | str | None) -> Iterator[SharedDatabase]:
    if not isinstance(server_database, SharedDatabase):
        pytest.skip(server_database or "SQLite: every test gets a new file, nothing to empty")
    server_database.reset()
    yield server_database
    server_database.reset()  # leave it as the next test expects, whatever happened here


def fill(settings: DatabaseSettings) -> None:
    database = init_database(settings)
    try:
        with unit_of_work():
            create_consumer()
            Nonce.record("acme-key", "nonce-1", 1)
            OutboxItem.create(kind="alert", tenant_id="t", datacenter_url="https://dc", payload="{}")
    finally:
        database.close_all()


def test_reset_empties_every_table_and_restarts_the_ids(shared: SharedDatabase) -> None:
    fill(shared.settings)
    shared.reset()
    database = init_database(shared.settings)
    try:
        with unit_of_work():
            assert not any(model.select().exists() for model in (Consumer, ConsumerSecret, Nonce, OutboxItem))
            assert create_consumer().id == 1  # as on a fresh database: tests may rely on it
            assert Nonce.record("acme-key", "nonce-1", 1)  # the unique index saw nothing before
    finally:
        database.close_all()


def test_reset_keeps_the_schema_and_costs_little(shared: SharedDatabase) -> None:
    fill(shared.settings)
    shared.reset()
    started = time.monotonic()
    for _ in range(10):
        shared.reset()  # clean already: a probe, no writes
    assert (time.monotonic() - started) / 10 < 0.05
    assert shared._schema() == shared.schema


def test_a_test_that_changed_the_schema_gets_it_rebuilt(shared: SharedDatabase) -> None:
    database = init_database(shared.settings)
    try:
        with unit_of_work():
            db.execute_sql("CREATE TABLE stray_table (id INTEGER PRIMARY KEY)")
            db.execute_sql("DROP TABLE nonce")
    finally:
        database.close_all()
    shared.reset()
    database = init_database(shared.settings)
    try:
        with unit_of_work():
            assert not database.table_exists("stray_table")
            assert Nonce.record("acme-key", "nonce-1", 1)
    finally:
        database.close_all()


def test_a_leftover_connection_holding_locks_is_evicted(shared: SharedDatabase) -> None:
    fill(shared.settings)
    database = init_database(shared.settings)
    holding, stop = threading.Event(), threading.Event()

    def leftover() -> None:  # e.g. a thread a test forgot to stop, inside a transaction
        try:
            with unit_of_work(), db.atomic():
                Consumer.update(label="locked").execute()
                holding.set()
                stop.wait(30)
        except pw.PeeweeException:
            pass  # its connection was killed under it: that is the point

    thread = threading.Thread(target=leftover, daemon=True)
    thread.start()
    assert holding.wait(5)
    shared._close_admin()
    shared.lock_timeout, saved = 0.3, shared.lock_timeout
    try:
        shared.reset()
    finally:
        shared.lock_timeout = saved
        shared._close_admin()
        stop.set()
        thread.join(5)
        database.close_all()
    fresh = init_database(shared.settings)
    try:
        with unit_of_work():
            assert not Consumer.select().exists()
    finally:
        fresh.close_all()


def test_db_settings_follows_the_selected_backend(db_settings: DatabaseSettings) -> None:
    assert db_settings.backend == selected_backend()


@pytest.mark.parametrize(
    ("argv", "code"), [(["unreachable", "sqlite"], 1), (["unreachable", "oracle"], 2), ([], 2)]
)
def test_the_command_line_for_scripts_test(
    argv: list[str], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == code
    out, err = capsys.readouterr()
    assert out == "" and (err.startswith("usage: ") if code == 2 else err == "")


def test_the_command_line_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.databases", "unreachable", "sqlite"],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
    )
    assert (done.returncode, done.stdout) == (1, b"")
