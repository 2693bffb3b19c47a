"""Replay guard: an in-process claim before the body is read, then the atomic database record.

Two layers, because the request path has one database round and it comes after the body:
- ``RecentNonces.claim`` (headers only, no I/O): a nonce this process has already seen is a replay,
  answered before a byte of the body is buffered. Only verified signatures get here, so unauthenticated
  traffic cannot fill it; it is bounded, and forgetting an entry early only defers to the next layer.
- ``record_nonce`` (inside the request's unit of work): the INSERT against the unique index is the
  authority across threads, processes and hosts (security-checklist §3). A request that fails before its
  unit of work still records its nonce (endpoint/web/base.py), so a refused request cannot be replayed
  elsewhere later.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from endpoint.auth.identity import VerifiedConsumer
from endpoint.errors import AuthenticationFailed
from models import Nonce

# Nonces stay recorded this long past the window, covering clock drift between instances.
NONCE_RETENTION_MARGIN = 60
# ~3 MB at most (~150 B a claim); a full table drops its oldest claims. The table only answers a replay
# before its body is read; the database's unique index refuses every replay whatever the table forgot.
# At 200,000 the soak (bench/soak.py) saw RSS grow by 31 MB over 10 minutes while the table filled.
DEFAULT_MAX_RECENT = 20_000


class RecentNonces:
    """(consumer key, nonce) pairs claimed by this process within the last ``2 * window + margin`` s.

    A timestamp is accepted up to ``window`` seconds in either direction, so a nonce can be replayed for
    at most ``2 * window`` seconds after it was first seen; entries live that long (plus the margin).
    """

    def __init__(
        self, window: int, max_entries: int = DEFAULT_MAX_RECENT, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = 2 * window + NONCE_RETENTION_MARGIN
        self._max_entries = max_entries
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()  # arrival order = expiry order
        self._lock = threading.Lock()

    def claim(self, key: str, nonce: str) -> bool:
        """True the first time this process sees (key, nonce); False for a replay."""
        now = self._clock()
        with self._lock:
            while self._seen:
                oldest = next(iter(self._seen.values()))
                if oldest > now:
                    break
                self._seen.popitem(last=False)
            if (key, nonce) in self._seen:
                return False
            self._seen[(key, nonce)] = now + self._ttl
            if len(self._seen) > self._max_entries:
                self._seen.popitem(last=False)
            return True

    def __len__(self) -> int:
        return len(self._seen)


def record_nonce(consumer: VerifiedConsumer) -> None:
    """Record the request's nonce (database thread, inside a unit of work).

    :raise AuthenticationFailed: the nonce is already recorded: a replay (401).
    """
    if consumer.nonce is None:
        return
    if not Nonce.record(consumer.key, consumer.nonce, consumer.timestamp):
        raise AuthenticationFailed(reason="nonce already used (replay)")


def purge_nonces(window: int, now: int) -> int:
    """Delete nonces that can no longer be replayed (their timestamp left the window)."""
    return Nonce.purge(older_than=now - window - NONCE_RETENTION_MARGIN)
