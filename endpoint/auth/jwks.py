"""The gateway's signing keys: the JWKS parsed into RSA public keys by ``kid``, fetched off the request path.

Fetching (acronis-callbacks.md §3, our rules): at start, then every ``refresh_interval`` seconds, always on
the store's own thread and through the one outbound session (proxy/jwks.py); the request path only reads
the current key dictionary. A ``kid`` nobody published asks for a refetch, at most one a minute
(``MIN_REFETCH_INTERVAL``), so a stream of made-up kids costs the identity provider one request a minute.
A failed fetch retries on that same minute and never touches the keys in use: the last good set keeps
verifying (a warning once per failure streak, the state in /healthz). Before the first success there is
nothing to verify with, and the stage answers 503.

Only RSA keys meant for RS256 signatures are taken (``use`` "sig", ``alg`` "RS256", when given), 2048 to
8192 bits, public halves only; other entries are skipped. The document and its key count are bounded.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from proxy.errors import ConnectorError

log = logging.getLogger(__name__)

MIN_REFETCH_INTERVAL = 60.0  # seconds: on-demand refetches (unknown kid) and retries after a failure
MAX_KEYS = 32  # entries in one JWKS; the real one lists two or three
MAX_KID = 256
MIN_RSA_BITS, MAX_RSA_BITS = 2048, 8192
_MAX_MODULUS_CHARS = MAX_RSA_BITS // 6 + 4  # base64url of the largest modulus taken (parsed before sizing)


class InvalidJwks(ValueError):
    """The document is not a JWKS we can verify with (no usable key, too many, not JSON)."""


def parse_jwks(body: bytes) -> tuple[dict[str, RSAPublicKey], int]:
    """(the RS256 verification keys by kid, how many entries were skipped). :raise InvalidJwks:"""
    try:
        document = json.loads(body)
    except ValueError as e:  # UnicodeDecodeError included
        raise InvalidJwks("not a JSON document") from e
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise InvalidJwks('no "keys" list')
    if len(entries) > MAX_KEYS:
        raise InvalidJwks(f"{len(entries)} keys listed (at most {MAX_KEYS})")
    keys: dict[str, RSAPublicKey] = {}
    for entry in entries:
        key = _verification_key(entry)
        if key is not None and entry["kid"] not in keys:
            keys[entry["kid"]] = key
    if not keys:
        raise InvalidJwks("no RSA key for RS256 signatures")
    return keys, len(entries) - len(keys)


def _verification_key(entry: Any) -> RSAPublicKey | None:
    if not isinstance(entry, dict) or entry.get("kty") != "RSA" or "d" in entry:
        return None  # another key type, or private material that has no business in a JWKS
    if entry.get("use", "sig") != "sig" or entry.get("alg", "RS256") != "RS256":
        return None
    kid, modulus = entry.get("kid"), entry.get("n")
    if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID or not kid.isprintable():
        return None
    if not isinstance(modulus, str) or len(modulus) > _MAX_MODULUS_CHARS:
        return None
    try:
        key = RSAAlgorithm.from_jwk(entry)
    except (jwt.InvalidKeyError, ValueError, TypeError, KeyError):
        return None
    if not isinstance(key, RSAPublicKey) or not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
        return None
    return key


def _short(error: Exception) -> str:
    """A failure's category for /healthz (never a URL or a message)."""
    return "invalid JWKS" if isinstance(error, InvalidJwks) else type(error).__name__


class JwksKeyStore:
    """The current verification keys: read from any thread, replaced whole by a fetch on its own thread."""

    def __init__(
        self,
        fetch: Callable[[], bytes],
        refresh_interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        executor: Executor | None = None,
    ) -> None:
        self._fetch = fetch
        self.refresh_interval = refresh_interval
        self.min_interval = MIN_REFETCH_INTERVAL  # read here, so a test can shorten it before building
        self._clock = clock
        self._wall_clock = wall_clock
        self._keys: dict[str, RSAPublicKey] = {}
        self._lock = threading.Lock()
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="jwks")
        self._running = False
        self._closed = False
        self._last_attempt: float | None = None  # monotonic
        self._last_success: float | None = None  # monotonic
        self._last_success_at: float | None = None  # wall clock, for /healthz
        self._last_error: str | None = None  # set while the latest fetch failed
        self._failures = 0  # consecutive

    # -- the request path (IOLoop): reads only -----------------------------------------------------
    def get(self, kid: str) -> RSAPublicKey | None:
        return self._keys.get(kid)  # one reference read: a refresh swaps the dictionary whole

    def age(self) -> float | None:
        """Seconds since the last successful fetch (None: none yet)."""
        last = self._last_success
        return None if last is None else self._clock() - last

    @property
    def ready(self) -> bool:
        """Whether any fetch has succeeded (there are keys to verify with)."""
        return bool(self._keys)

    def request_refetch(self) -> bool:
        """A ``kid`` we do not know: fetch again, unless a fetch started within ``min_interval`` seconds."""
        return self._start("refetch")

    def retry_after(self) -> float:
        """Seconds until the next fetch may run (for Retry-After while there are no keys)."""
        last = self._last_attempt
        waited = self.min_interval if last is None else self._clock() - last
        return max(1.0, self.min_interval - waited)

    def status(self) -> dict[str, Any]:
        """For /healthz: state ("ok", "stale": the last fetch failed and older keys are in use, "no keys"),
        key count, the last success (UTC, ISO 8601) and the last failure's category."""
        with self._lock:
            keys, error, success_at = len(self._keys), self._last_error, self._last_success_at
        state = "no keys" if not keys else ("stale" if error else "ok")
        when = None
        if success_at is not None:
            when = dt.datetime.fromtimestamp(success_at, dt.UTC).isoformat(timespec="seconds")
        return {"state": state, "keys": keys, "last_success": when, "last_error": error}

    # -- scheduling (IOLoop): start a fetch on the store's thread ------------------------------------
    def refresh_soon(self) -> bool:
        """Start a fetch now unless one is running (start-up)."""
        return self._start("now")

    def refresh_if_due(self) -> bool:
        """The periodic tick: ``refresh_interval`` after a success, ``min_interval`` after a failure."""
        return self._start("due")

    @property
    def tick_interval(self) -> float:
        return min(self.min_interval, self.refresh_interval)

    def _start(self, why: str) -> bool:
        now = self._clock()
        with self._lock:
            if self._running or self._closed:
                return False
            last, success = self._last_attempt, self._last_success
            recent = last is not None and now - last < self.min_interval
            if why == "refetch" and recent:
                return False
            if why == "due":
                if self._last_error is None and success is not None:
                    if now - success < self.refresh_interval:
                        return False
                elif recent:
                    return False
            self._running = True
            self._last_attempt = now
        if why == "refetch":
            log.info("JWKS: a token names a kid not in the keys; fetching the JWKS again")
        try:
            self._executor.submit(self._run)
        except RuntimeError:  # closed meanwhile
            with self._lock:
                self._running = False
            return False
        return True

    def _run(self) -> None:
        try:
            self.refresh()
        except Exception:  # a bug, not a fetch failure: keep the keys, say so, let the next tick retry
            log.exception("JWKS refresh failed unexpectedly; keeping the current keys")
        finally:
            with self._lock:
                self._running = False

    # -- the store's thread ---------------------------------------------------------------------
    def refresh(self) -> bool:
        """Fetch and parse (blocking); on success replace the keys, on failure keep them. Never raises
        for a fetch or document failure: returns False and records it."""
        try:
            keys, skipped = parse_jwks(self._fetch())
        except (ConnectorError, InvalidJwks) as e:
            self._failed(e)
            return False
        with self._lock:
            previous, failures = self._keys, self._failures
            self._keys = keys
            self._last_success, self._last_success_at = self._clock(), self._wall_clock()
            self._last_error, self._failures = None, 0
        if failures or set(previous) != set(keys):
            log.info(
                "JWKS: %d keys (%s)%s%s",
                len(keys),
                ", ".join(sorted(keys))[:300],
                f", {skipped} entries skipped" if skipped else "",
                f", after {failures} failed fetches" if failures else "",
            )
        return True

    def _failed(self, error: Exception) -> None:
        with self._lock:
            self._last_error = _short(error)
            self._failures += 1
            first, keys, success = self._failures == 1, len(self._keys), self._last_success
        if not first:  # once per failure streak; the state stays visible in /healthz
            log.debug("JWKS still not fetched: %s", error)
            return
        if keys:
            age = self._clock() - (success or 0.0)
            kept = f"still verifying with the {keys} keys fetched {age:.0f}s ago"
        else:
            kept = "gateway tokens get 503 until a fetch succeeds"
        log.warning("JWKS not fetched (%s); %s; retrying every %.0fs", error, kept, self.min_interval)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
