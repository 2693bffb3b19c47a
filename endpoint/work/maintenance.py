"""Housekeeping run periodically by the server: expired nonces and ledger entries."""

from __future__ import annotations

import datetime as dt
import logging
import time

from endpoint.auth.nonces import purge_nonces
from endpoint.callbacks import ledger
from endpoint.config.sections import EndpointSettings
from models.db import bounded_page_cache, utcnow

log = logging.getLogger(__name__)


def purge_expired(settings: EndpointSettings, now: float | None = None) -> tuple[int, int]:
    """Delete nonces outside the replay window and ledger entries past their TTL; returns the counts."""
    with bounded_page_cache():  # both scan tables that grow with traffic: not through the whole cache
        nonces = purge_nonces(settings.timestamp_window, int(time.time() if now is None else now))
        entries = ledger.purge(utcnow() - dt.timedelta(seconds=settings.ledger_ttl))
    if nonces or entries:
        log.info("purged %d nonces and %d ledger entries", nonces, entries)
    return nonces, entries
