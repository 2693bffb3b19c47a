"""Verified-credential cache: recent successful argon2 verifies, HMAC-keyed (security-checklist §7 A)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

log = logging.getLogger(__name__)


class VerifiedCredentialCache:
    """Remembers ``(user id, password, stored hash)`` triples that verified, for ``ttl`` seconds.

    - Only an HMAC-SHA256 digest under a random per-process key is stored, never the password.
    - The stored hash is part of the key, so a password change, reset or rehash makes every old entry
      unreachable at once (security-checklist.md §11 item 35).
    - Successes only: a negative cache does not slow an attacker who varies the password, and it would
      grow under attack.
    - Bounded LRU of ``max_entries``; expired entries are dropped when met.
    - Per process: each worker process and instance pays its own first argon2 verify.
    """

    def __init__(self, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries: must be >= 1")
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._key = secrets.token_bytes(32)  # lives only in this process's memory
        self._entries: OrderedDict[bytes, float] = OrderedDict()  # digest -> expiry (clock time)
        self._lock = threading.Lock()  # cheap insurance should a caller ever use it off the IOLoop

    def lookup(self, user_id: str, password: str, stored_hash: str) -> bool:
        """True when this exact triple verified within the last ``ttl`` seconds."""
        digest = self._digest(user_id, password, stored_hash)
        now = self._clock()
        with self._lock:
            expires = self._entries.get(digest)
            if expires is None:
                return False
            if expires <= now:
                del self._entries[digest]
                return False
            self._entries.move_to_end(digest)
            return True

    def remember(self, user_id: str, password: str, stored_hash: str) -> None:
        """Record a successful verify; evicts the least recently used entry beyond ``max_entries``."""
        if self._ttl <= 0:
            return  # caching disabled
        digest = self._digest(user_id, password, stored_hash)
        expires = self._clock() + self._ttl
        with self._lock:
            self._entries[digest] = expires
            self._entries.move_to_end(digest)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def fingerprint(self, user_id: str, password: str, stored_hash: str) -> bytes:
        """The keyed digest of a triple: lets callers coalesce identical in-flight verifies safely."""
        return self._digest(user_id, password, stored_hash)

    def _digest(self, user_id: str, password: str, stored_hash: str) -> bytes:
        parts = [part.encode("utf-8") for part in (user_id, password, stored_hash)]
        # Length-prefixed, so no two different triples can feed the MAC the same bytes; hmac.digest is
        # OpenSSL's one-shot HMAC (an hmac.new object per lookup cost three times as much).
        message = b"".join(len(data).to_bytes(8, "big") + data for data in parts)
        return hmac.digest(self._key, message, hashlib.sha256)
