"""Failed-login throttling: fixed-window counters per key, and the login policy built on them."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from endpoint.errors import TooManyRequests

log = logging.getLogger(__name__)

DEFAULT_MAX_KEYS = 100_000


class FailureThrottle:
    """At most ``limit`` failures per key within a fixed ``window`` that opens at the key's first failure.

    - Per process, in memory, by design: N worker processes or instances allow up to N x ``limit``
      failures. It is a brake on online guessing and on argon2 cost, not an account lockout record.
    - A fixed window is O(1) per key; its price is a burst of up to 2 x ``limit`` around a window
      boundary, which argon2's cost and the verifier pool cap keep small.
    - Memory is bounded: keys are stored as 16-byte digests (an identity may be kilobytes long), expired
      windows are pruned, and at most ``max_keys`` keys are tracked. Beyond that the oldest window is
      dropped, so spraying identities cannot grow memory; the per-IP throttle limits such spraying.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        name: str = "key",
    ) -> None:
        if limit < 1 or window <= 0 or max_keys < 1:
            raise ValueError("limit and max_keys must be >= 1 and window > 0")
        self._limit = limit
        self._window = window
        self._clock = clock
        self._max_keys = max_keys
        self._name = name
        # digest -> [window start, failures]. Kept in window-start order (a new window re-inserts at
        # the end), so expired windows are always at the front and pruning never scans live ones.
        self._windows: OrderedDict[bytes, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """:raise TooManyRequests: when ``key`` has ``limit`` failures in its current window."""
        retry_after = self.retry_after(key)
        if retry_after > 0:
            raise self.refusal(retry_after)

    def retry_after(self, key: str) -> float:
        """Seconds until ``key``'s window ends if it has ``limit`` failures in it; 0.0 while under it."""
        if not self._windows:  # no failures anywhere (the steady state): nothing to hash or look up
            return 0.0
        slot = self._slot(key)
        with self._lock:
            now = self._clock()
            self._prune(now)
            entry = self._windows.get(slot)
            if entry is None or entry[1] < self._limit:
                return 0.0
            return entry[0] + self._window - now  # > 0: expired windows were just pruned

    def refusal(self, retry_after: float) -> TooManyRequests:
        """The 429 for this counter; its reason names the counter, never the key (attacker-chosen text)."""
        return TooManyRequests(
            reason=f"failed-login limit reached for this {self._name} "
            f"({self._limit} in {self._window:g}s; retry in {retry_after:.0f}s)",
            retry_after=retry_after,
        )

    def record_failure(self, key: str) -> int:
        """Count a failure; returns ``key``'s failures in its current window."""
        slot = self._slot(key)
        with self._lock:
            now = self._clock()
            self._prune(now)
            entry = self._windows.get(slot)
            if entry is None:
                self._windows[slot] = [now, 1]
                while len(self._windows) > self._max_keys:
                    self._windows.popitem(last=False)
                return 1
            entry[1] += 1
            return int(entry[1])

    def reset(self, key: str) -> None:
        """Forget ``key``'s failures (after a successful login)."""
        if not self._windows:
            return
        with self._lock:
            self._windows.pop(self._slot(key), None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._windows)

    def _prune(self, now: float) -> None:
        while self._windows:
            start = next(iter(self._windows.values()))[0]
            if start + self._window > now:
                break
            self._windows.popitem(last=False)

    @staticmethod
    def _slot(key: str) -> bytes:
        return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class LoginThrottle:
    """Failed logins counted so that no one's failures can lock out anyone else.

    Behind the inbound proxy every callback comes from one address (the controller or the gateway), so
    a per-address lockout would let one mistyping admin -- or anyone who can make the platform send
    failed logins -- lock out every tenant. Hence:
    - per identity: ``identity_limit`` failures in the window refuse that identity only (429), from
      every client: an online guesser gets that many tries per account and window, wherever it is;
    - per (client, identity): ``pair_limit`` failures refuse that pair only, so a client retrying a
      stale password stops before it spends the identity's whole allowance for everyone else;
    - per client: never a refusal. Past ``client_soft_limit`` failures in its window, the client's
      further *failed* attempts are answered late (``record_failure`` returns the delay, growing
      linearly to ``max_delay``, reached at 2 x ``client_soft_limit``): a serial guesser spraying
      identities slows down, while a correct login -- cached or verified, of any identity -- is never
      refused nor delayed by it. The memory guard against parallel guessing floods stays the bounded
      argon2 executor (endpoint/auth/passwords.py: 429 past max_pending_verifies), not this counter.
    A success resets the identity's and the pair's counters, never the client's: one valid account must
    not wipe what an address collected against other identities. Each counter is a FailureThrottle (per
    process, fixed window, 16-byte digests, at most ``max_keys`` keys of ~250 bytes: ~75 MB for the
    three at the default, reached only by ~100k failures within one window).
    """

    def __init__(
        self,
        *,
        identity_limit: int,
        pair_limit: int,
        client_soft_limit: int,
        window: float,
        max_delay: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if client_soft_limit < 1 or max_delay < 0:
            raise ValueError("client_soft_limit must be >= 1 and max_delay >= 0")
        self._identity = FailureThrottle(identity_limit, window, clock, max_keys=max_keys, name="identity")
        self._pair = FailureThrottle(pair_limit, window, clock, max_keys=max_keys, name="client and identity")
        # The client counter is never checked: its limit is only a bound no count needs to reach.
        self._client = FailureThrottle(2**31, window, clock, max_keys=max_keys, name="client")
        self._soft_limit = client_soft_limit
        self._max_delay = max_delay

    def check(self, identity: str, client: str) -> None:
        """Before any verify. Reads the identity's and this pair's counters only, never the client's.

        :raise TooManyRequests: the identity, or this client's attempts at it, failed too often; when
            both did, the one refused longer answers (its ``retry_after`` is the one that holds).
        """
        waits = [
            (self._identity.retry_after(identity), self._identity),
            (self._pair.retry_after(_pair(client, identity)), self._pair),
        ]
        retry_after, counter = max(waits, key=lambda wait: wait[0])
        if retry_after > 0:
            raise counter.refusal(retry_after)

    def record_failure(self, identity: str, client: str) -> float:
        """Count a failed login against all three counters; returns the seconds to wait before answering
        it: 0.0 up to ``client_soft_limit`` client failures in the window, then ``max_delay`` x (failures
        - soft limit) / soft limit, capped at ``max_delay``."""
        self._identity.record_failure(identity)
        self._pair.record_failure(_pair(client, identity))
        over = self._client.record_failure(client) - self._soft_limit
        if over <= 0:
            return 0.0
        return min(self._max_delay, self._max_delay * over / self._soft_limit)

    def record_success(self, identity: str, client: str) -> None:
        """Forget the identity's and the pair's failures; the client's stay (one valid account must not
        wipe what an address collected against other identities)."""
        self._identity.reset(identity)
        self._pair.reset(_pair(client, identity))

    def __len__(self) -> int:
        """Keys tracked by the three counters together (at most 3 x ``max_keys``)."""
        return len(self._identity) + len(self._pair) + len(self._client)


def _pair(client: str, identity: str) -> str:
    return f"{len(client)}:{client}|{identity}"  # length-prefixed: no two pairs share a key
