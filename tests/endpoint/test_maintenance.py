"""purge_expired: nonces leave after the window, ledger entries after their TTL; fresh ones stay."""

from __future__ import annotations

import datetime as dt
import time

import peewee as pw

from endpoint.maintenance import purge_expired
from endpoint.settings import EndpointSettings
from models import Nonce, RequestLedger
from models.db import utcnow


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
