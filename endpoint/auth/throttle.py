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
        slot = self._slot(key)
        with self._lock:
            now = self._clock()
            self._prune(now)
            entry = self._windows.get(slot)
            if entry is not None and entry[1] >= self._limit:
                retry_after = entry[0] + self._window - now
                raise TooManyRequests(
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
    - per identity: ``identity_limit`` failures in the window refuse that identity only (429);
    - per (client, identity): ``pair_limit`` failures refuse that pair only;
    - per client: never a refusal. Past ``client_soft_limit`` failures, the client's further *failed*
      attempts are answered late (``record_failure`` returns the delay, growing linearly to
      ``max_delay``): a serial guesser slows down, a correct login of any identity is never delayed.
      Parallel guessing floods stay bounded by the argon2 executor's cap (endpoint/auth/passwords.py).
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
        self._identity = FailureThrottle(identity_limit, window, clock, max_keys=max_keys, name="identity")
        self._pair = FailureThrottle(pair_limit, window, clock, max_keys=max_keys, name="client and identity")
        # The client counter never refuses: its limit is only a bound no count needs to reach.
        self._client = FailureThrottle(2**31, window, clock, max_keys=max_keys, name="client")
        self._soft_limit = client_soft_limit
        self._max_delay = max_delay

    def check(self, identity: str, client: str) -> None:
        """:raise TooManyRequests: the identity, or this client's attempts at it, failed too often."""
        self._identity.check(identity)
        self._pair.check(_pair(client, identity))

    def record_failure(self, identity: str, client: str) -> float:
        """Count a failed login; returns the seconds to wait before answering it."""
        self._identity.record_failure(identity)
        self._pair.record_failure(_pair(client, identity))
        failures = self._client.record_failure(client)
        over = failures - self._soft_limit
        if over <= 0 or self._max_delay <= 0:
            return 0.0
        return min(self._max_delay, self._max_delay * over / max(1, self._soft_limit))

    def record_success(self, identity: str, client: str) -> None:
        """Forget the identity's and the pair's failures; the client's stay (one valid account must not
        wipe what an address collected against other identities)."""
        self._identity.reset(identity)
        self._pair.reset(_pair(client, identity))


def _pair(client: str, identity: str) -> str:
    return f"{len(client)}:{client}|{identity}"  # length-prefixed: no two pairs share a key
