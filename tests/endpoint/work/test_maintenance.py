"""purge_expired: nonces leave after the window, ledger entries after their TTL; fresh ones stay."""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import random
import sqlite3
import time
from collections.abc import Callable

import peewee as pw
import pytest

from endpoint.config.sections import EndpointSettings
from endpoint.work.maintenance import purge_expired
from models import Nonce, RequestLedger
from models.db import DatabaseSettings, unit_of_work, utcnow
from models.sqlite import SQLITE_CACHE_SIZE


def ledger_row(request_id: str, age: dt.timedelta) -> None:
    RequestLedger.create(
        principal="k",
        organization_id="o",
        request_id=request_id,
        callback_id="c",
        payload_hash="h",
        status=200,
        response_body="{}",
        created_at=utcnow() - age,
    )


def test_purge_expired(database: pw.Database) -> None:
    now = int(time.time())
    Nonce.record("key-1", "fresh-nonce", now - 10)
    Nonce.record("key-1", "stale-nonce", now - 3600)
    ledger_row("old", dt.timedelta(days=2))
    ledger_row("new", dt.timedelta(minutes=5))
    settings = EndpointSettings(public_base_url="https://connector.example.com/", ledger_ttl=86400)
    assert purge_expired(settings, now) == (1, 1)
    assert [n.nonce for n in Nonce.select()] == ["fresh-nonce"]
    assert [r.request_id for r in RequestLedger.select()] == ["new"]


# -- the purge's memory (SQLite) --------------------------------------------------------------------
def sqlite_memory_peak() -> Callable[[], float] | None:
    """SQLite's own allocation counter, from the library Python's sqlite3 module is linked with: a
    function that returns the MiB allocated at the peak since its previous call (and resets the peak)."""
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
        lib.sqlite3_libversion.restype = ctypes.c_char_p
        if lib.sqlite3_libversion().decode() != sqlite3.sqlite_version:
            return None  # another copy of the library: its counters are not ours
        status = lib.sqlite3_status64
    except (OSError, AttributeError):
        return None

    def peak() -> float:
        current, high = ctypes.c_int64(), ctypes.c_int64()
        status(0, ctypes.byref(current), ctypes.byref(high), 1)  # SQLITE_STATUS_MEMORY_USED, then reset
        return high.value / 1048576

    return peak


def test_the_purge_does_not_pull_the_whole_nonce_table_into_memory(
    database: pw.Database, db_settings: DatabaseSettings
) -> None:
    """The nonce keys are random, so a purge by age dirties nearly every page of the table. Through the
    connection's 16 MB page cache that cost 16 MB a purge, which the allocator kept resident (the SQLite
    soak's step when its first purge ran); the purge runs with its cache capped at 2 MiB."""
    if db_settings.backend != "sqlite":
        pytest.skip("SQLite's page cache")
    peak = sqlite_memory_peak()
    if peak is None:
        pytest.skip("SQLite's memory counters are not reachable through ctypes here")
    now = int(time.time())
    rng = random.Random(7)
    rows = [
        {
            "consumer_key": "acme-3f9c0e7d2b6a4c1e8d5f7a9b0c2e4d6f",
            "nonce": f"{rng.getrandbits(256):064x}",
            "timestamp": now - (3600 if i % 2 else 10),
        }
        for i in range(150_000)
    ]  # about 22 MB, more than the page cache holds
    with database.atomic():
        for start in range(0, len(rows), 5000):
            Nonce.insert_many(rows[start : start + 5000]).execute()
    database.close()  # the purge gets a connection of its own, as on the server's thread
    database.close_all()
    settings = EndpointSettings(public_base_url="https://connector.example.com/")
    peak()
    with unit_of_work():
        assert purge_expired(settings, now) == (75_000, 0)
    used = peak()
    assert used < 6, f"{used:.1f} MiB allocated by SQLite during the purge"
    with unit_of_work():
        assert Nonce.select().count() == 75_000
        # and the connection's own cache is back at its size for the requests that use it next
        assert database.execute_sql("PRAGMA cache_size").fetchone()[0] == SQLITE_CACHE_SIZE
