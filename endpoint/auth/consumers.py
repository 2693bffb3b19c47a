"""ConsumerSecrets: every consumer's verification secrets, held in memory and refreshed off the request path.

The transport stage runs on the headers before the body, and it must not cost a database round per
request: unauthenticated traffic would otherwise buy database work. So the whole secret table (a few rows
per application instance) is read into this process at start and again every ``refresh_interval``
seconds, by a background task (endpoint/web/server.py). Expiry (``not_after``) is evaluated per request
against the snapshot, so a rotation's overlap ends exactly on time; a revocation or a new key reaches
every process within ``refresh_interval`` seconds (endpoint.secrets_refresh, default 2 s). A failed
refresh keeps the previous snapshot and says so in the log.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from models import Consumer
from models.db import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Secret:
    secret_id: int
    secret: str
    not_after: dt.datetime | None


class ConsumerSecrets:
    """Thread-safe snapshot: ``load()`` runs in a database unit of work, ``active()`` anywhere."""

    def __init__(self, refresh_interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.refresh_interval = refresh_interval
        self._clock = clock
        self._by_key: dict[str, tuple[_Secret, ...]] = {}
        self._loaded_at: float | None = None
        self._lock = threading.Lock()

    def load(self) -> int:
        """Replace the snapshot with the database's unexpired secrets; returns how many were read."""
        by_key: dict[str, list[_Secret]] = {}
        for key, secret_id, secret, not_after in Consumer.unexpired_secrets(utcnow()):
            by_key.setdefault(key, []).append(_Secret(secret_id, secret, not_after))
        with self._lock:
            self._by_key = {key: tuple(items) for key, items in by_key.items()}
            self._loaded_at = self._clock()
        return sum(len(items) for items in by_key.values())

    def active(self, key: str, now: dt.datetime | None = None) -> list[tuple[int, str]]:
        """(secret id, secret) pairs that may verify a signature for ``key`` now, newest first."""
        secrets = self._by_key.get(key, ())  # one reference read: a concurrent load swaps the dict whole
        if all(s.not_after is None for s in secrets):  # the usual case: no rotation in progress, no clock
            return [(s.secret_id, s.secret) for s in secrets]
        now = now or utcnow()
        return [(s.secret_id, s.secret) for s in secrets if s.not_after is None or s.not_after > now]

    @property
    def age(self) -> float | None:
        """Seconds since the last successful load (None: never loaded)."""
        return None if self._loaded_at is None else self._clock() - self._loaded_at
