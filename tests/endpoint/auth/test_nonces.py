"""The replay guard: an in-process claim before the body, the database record as the authority."""

from __future__ import annotations

import peewee as pw
import pytest

from endpoint.auth.identity import VerifiedConsumer
from endpoint.auth.nonces import NONCE_RETENTION_MARGIN, RecentNonces, purge_nonces, record_nonce
from endpoint.errors import AuthenticationFailed
from models import Nonce


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_nonce_is_claimed_once_per_consumer() -> None:
    recent = RecentNonces(window=300)
    assert recent.claim("key-a", "n1")
    assert not recent.claim("key-a", "n1")
    assert recent.claim("key-b", "n1")  # uniqueness is per consumer


def test_claims_expire_after_twice_the_window_plus_the_margin() -> None:
    clock = Clock()
    recent = RecentNonces(window=300, clock=clock)
    assert recent.claim("key", "n1")
    clock.now += 2 * 300 + NONCE_RETENTION_MARGIN - 1
    assert not recent.claim("key", "n1")
    clock.now += 2
    assert recent.claim("key", "n1")  # the timestamp check refuses such a request anyway
    assert len(recent) == 1


def test_the_table_is_bounded_and_drops_its_oldest_claims() -> None:
    recent = RecentNonces(window=300, max_entries=3)
    for i in range(5):
        assert recent.claim("key", f"n{i}")
    assert len(recent) == 3
    assert recent.claim("key", "n0")  # forgotten here; the database record still refuses it
    assert not recent.claim("key", "n4")


def test_record_nonce_refuses_a_recorded_one(database: pw.Database) -> None:
    consumer = VerifiedConsumer(key="key-a", secret_id=1, nonce="n1", timestamp=1_700_000_000)
    record_nonce(consumer)
    with pytest.raises(AuthenticationFailed, match="replay"):
        record_nonce(consumer)
    assert Nonce.select().count() == 1


def test_a_consumer_without_a_nonce_records_nothing(database: pw.Database) -> None:
    record_nonce(VerifiedConsumer(key="key-a", secret_id=1))
    assert Nonce.select().count() == 0


def test_a_128_character_printable_nonce_is_stored_whole(database: pw.Database) -> None:
    nonce = ("aZ09+/=~ !" * 13)[:128]
    record_nonce(VerifiedConsumer(key="key-a", secret_id=1, nonce=nonce, timestamp=1_700_000_000))
    assert Nonce.get().nonce == nonce


def test_purge_keeps_what_may_still_be_replayed(database: pw.Database) -> None:
    now = 1_700_000_000
    Nonce.record("key", "old", now - 300 - NONCE_RETENTION_MARGIN - 1)
    Nonce.record("key", "young", now - 300)
    assert purge_nonces(300, now) == 1
    assert [n.nonce for n in Nonce.select()] == ["young"]
