"""The request ledger: hashing, claim/store/lookup scoped by (principal, ORG, request_id), purge."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

import argon2
import peewee as pw
import pytest

from endpoint.callbacks import ledger
from endpoint.callbacks.dispatch import CallbackDispatcher
from endpoint.callbacks.ledger import DuplicateRequest, LedgerEntry
from endpoint.callbacks.responses import CallbackResponse
from endpoint.errors import Conflict
from endpoint.work.executors import DatabaseRunner
from models import RequestLedger, User, db
from models.db import utcnow
from tests.support.callback_builders import (
    CREATE,
    POSTMAN_USER,
    RESET,
    RecordingHasher,
    World,
    envelope,
    send,
    snapshot,
)

NAME = "vendor.app.user_write.v1.0"
CB = "cti.a.p.acgw.callback.v1.0~" + NAME
TENANT = "00000000-0000-0000-0000-000000000000"
DC = "https://eu8-cloud.acronis.com"
RID = "7f1c2d9e-5b7a-4a61-9a8e-3c2b1d0e9f11"
BODY = {"type": "t", "request_id": RID, "response_id": "r1"}


def record(principal: str = "key-1", org: str = "org-1", request_id: str = RID, digest: str = "h1") -> None:
    with db.atomic():
        assert ledger.claim(principal, org, request_id, CB, digest) is None
        ledger.store(principal, org, request_id, 200, BODY)


def test_request_hash_is_canonical() -> None:
    a = envelope(NAME, {"login": "a", "name": "b", "nested": {"x": 1, "y": [1, 2]}}, request_id=RID)
    b = envelope(NAME, {"nested": {"y": [1, 2], "x": 1}, "name": "b", "login": "a"}, request_id=RID)
    assert ledger.request_hash(a) == ledger.request_hash(b) and len(ledger.request_hash(a)) == 64
    # created_at and endpoint_id do not change what the request does.
    c = dataclasses.replace(a, created_at="0001-01-01T00:00:00Z", request_id="other")
    assert ledger.request_hash(c) == ledger.request_hash(a)


@pytest.mark.parametrize(
    "change",
    [
        {"callback_id": CB.replace("user_write", "user_update")},
        {"type": "cti.a.p.acgw.request.v1.0~a.p.empty.v1.0"},
        {"tenant_id": "11111111-1111-4111-8111-111111111111"},
        {"datacenter_url": None},
        {"payload": {"login": "a", "name": "c"}},
        {"payload": {"login": "a", "name": "b", "extra": None}},
    ],
)
def test_request_hash_changes_with_what_the_callback_acts_on(change: dict[str, Any]) -> None:
    base = envelope(NAME, {"login": "a", "name": "b"}, tenant_id=TENANT, datacenter_url=DC)
    assert ledger.request_hash(base) != ledger.request_hash(dataclasses.replace(base, **change))


def test_claim_then_store_then_lookup(database: pw.Database) -> None:
    assert ledger.lookup("key-1", "org-1", RID) is None
    with database.atomic():
        assert ledger.claim("key-1", "org-1", RID, CB, "h1") is None
        assert ledger.lookup("key-1", "org-1", RID) is None  # a claimed, unanswered row is not an answer
        ledger.store("key-1", "org-1", RID, 200, BODY)
    assert ledger.lookup("key-1", "org-1", RID) == LedgerEntry(CB, "h1", 200, BODY)


def test_claim_returns_the_existing_entry(database: pw.Database) -> None:
    record()
    with database.atomic():
        existing = ledger.claim("key-1", "org-1", RID, CB, "other-hash")
    assert existing is not None and existing.body == BODY
    assert existing.same_request(CB, "h1") and not existing.same_request(CB, "other-hash")
    assert not existing.same_request("other-callback", "h1")
    assert RequestLedger.select().count() == 1


def test_a_rolled_back_claim_leaves_no_row(database: pw.Database) -> None:
    with pytest.raises(RuntimeError), database.atomic():
        ledger.claim("key-1", "org-1", RID, CB, "h1")
        raise RuntimeError("the effect failed")
    assert RequestLedger.select().count() == 0


def test_a_concurrent_duplicate_insert_raises_duplicate_request(
    database: pw.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our lookup ran before the other transaction committed: the unique index catches it."""
    record()
    monkeypatch.setattr(ledger, "lookup", lambda *args: None)
    with pytest.raises(DuplicateRequest), database.atomic():
        ledger.claim("key-1", "org-1", RID, CB, "h1")
    monkeypatch.undo()
    assert ledger.lookup("key-1", "org-1", RID) == LedgerEntry(CB, "h1", 200, BODY)


@pytest.mark.parametrize(("principal", "org"), [("key-2", "org-1"), ("key-1", "org-2")])
def test_entries_are_scoped_by_principal_and_org(database: pw.Database, principal: str, org: str) -> None:
    record()
    assert ledger.lookup(principal, org, RID) is None
    record(principal, org, RID, "h2")
    assert RequestLedger.select().count() == 2


def test_purge_deletes_only_old_entries(database: pw.Database) -> None:
    record(request_id="old")
    record(request_id="new")
    RequestLedger.update(created_at=utcnow() - dt.timedelta(hours=25)).where(
        RequestLedger.request_id == "old"
    ).execute()
    assert ledger.purge(utcnow() - dt.timedelta(hours=24)) == 1
    assert [r.request_id for r in RequestLedger.select()] == ["new"]


# ---- Through the dispatcher: §10 rules end to end ----


def miss_lookups(monkeypatch: pytest.MonkeyPatch, count: int) -> list[int]:
    """The next ``count`` ledger lookups miss, as if another transaction had not committed yet."""
    real, misses = ledger.lookup, [count]

    def late_lookup(*args: Any) -> Any:
        if misses[0]:
            misses[0] -= 1
            return None
        return real(*args)

    monkeypatch.setattr(ledger, "lookup", late_lookup)
    return misses


def test_reset_password_retry_gives_a_new_password_and_the_ledger_keeps_none(
    dispatcher: CallbackDispatcher, world: World
) -> None:
    env = envelope(RESET, {"id": world.alice.id})
    first = send(dispatcher, world, env)
    second = send(dispatcher, world, env)
    old, new = first.body["payload"]["password"], second.body["payload"]["password"]
    assert old != new and first.body["response_id"] != second.body["response_id"]
    stored = User.get_by_id(world.alice.id).password_hash
    assert argon2.PasswordHasher().verify(stored, new)
    with pytest.raises(argon2.exceptions.VerifyMismatchError):
        argon2.PasswordHasher().verify(stored, old)
    rows = list(RequestLedger.select().tuples())
    assert len(rows) == 1
    assert not any(p in repr(rows) for p in (old, new))
    with pytest.raises(Conflict):  # a different payload under the same request_id is still refused
        send(dispatcher, world, dataclasses.replace(env, payload={"id": world.bob.id}))


def test_a_concurrent_duplicate_ends_as_the_stored_response(
    dispatcher: CallbackDispatcher, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both lookups missed the other transaction's entry: the unique ledger index decides, never a 500."""
    env = envelope(CREATE, POSTMAN_USER)
    first = send(dispatcher, world, env)
    misses = miss_lookups(monkeypatch, 2)
    before = snapshot()
    assert send(dispatcher, world, env) == first
    assert misses == [0] and snapshot() == before


def test_a_concurrent_duplicate_reset_performs_a_new_reset(
    dispatcher: CallbackDispatcher, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = envelope(RESET, {"id": world.alice.id})
    first = send(dispatcher, world, env)
    misses = miss_lookups(monkeypatch, 2)
    second = send(dispatcher, world, env)
    assert misses == [0]  # the duplicate went through the unique-index path, then ran a new reset
    assert second.body["payload"]["password"] != first.body["payload"]["password"]
    assert RequestLedger.select().count() == 1


def test_truly_concurrent_duplicates_run_the_effect_once(world: World, hasher: RecordingHasher) -> None:
    runner = DatabaseRunner(threads=4)
    dispatcher = CallbackDispatcher("vendor.app", runner, hasher)
    env = envelope(CREATE, POSTMAN_USER)

    async def burst() -> list[CallbackResponse]:
        return await asyncio.gather(*(dispatcher.dispatch("key-1", world.acting(), env) for _ in range(8)))

    try:
        responses = asyncio.run(burst())
    finally:
        runner.shutdown()
    assert {r.status for r in responses} == {200}
    assert len({r.body["response_id"] for r in responses}) == 1
    assert User.select().where(User.login == "test.user").count() == 1
    assert RequestLedger.select().count() == 1
