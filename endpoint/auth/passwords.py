"""argon2id hashing and verification on a dedicated, bounded executor (security-checklist.md §6, §7 D)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from endpoint.config.sections import AuthSettings
from endpoint.errors import TooManyRequests
from endpoint.work.executors import cpu_threads

log = logging.getLogger(__name__)

T = TypeVar("T")


def make_hasher(settings: AuthSettings) -> argon2.PasswordHasher:
    """The argon2id hasher with the configured parameters (also used synchronously by bootstrap.py)."""
    return argon2.PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        type=argon2.Type.ID,
    )


class PasswordService:
    """Hashes and verifies passwords off the IOLoop, with at most ``max_pending_verifies`` jobs in flight.

    Every job (verify, dummy verify, hash) holds ``argon2_memory_kib`` of RAM while it runs (64 MiB at
    production parameters), so queued plus running work is capped and the excess is refused with
    TooManyRequests at once instead of piling up in an unbounded executor queue.
    """

    def __init__(self, settings: AuthSettings) -> None:
        self._hasher = make_hasher(settings)
        # Own pool, sized to the cores: argon2 releases the GIL and scales with them, and it must never
        # starve the database executor (security-checklist.md §8.4).
        self._executor = ThreadPoolExecutor(
            max_workers=cpu_threads(settings.verify_threads), thread_name_prefix="argon2"
        )
        self._max_pending = settings.max_pending_verifies
        # A lock-guarded counter rather than an asyncio.Semaphore: it is released from the executor's
        # done callback (a worker thread) and is not tied to one event loop.
        self._lock = threading.Lock()
        self._pending = 0
        # The dummy hash for unknown users is computed by the pool, not by the constructor's caller
        # (which may be the IOLoop thread). It is the first job submitted, so a worker that needs it
        # only ever waits for a job that is already running or done.
        self._dummy_hash: Future[str] = self._executor.submit(self._hasher.hash, secrets.token_urlsafe(24))

    async def verify(self, stored_hash: str, password: str) -> bool:
        """True when ``password`` matches; False on a mismatch or an unusable stored hash.

        :raise TooManyRequests: when the verifier pool is saturated.
        """
        return await self._submit(self._verify_blocking, stored_hash, password)

    async def dummy_verify(self, password: str) -> None:
        """Spend the time and memory of a real verify, for identities that cannot succeed.

        An early exit for unknown users would let callers enumerate logins by timing (the oauthlib
        ``dummy_client`` rule, security-checklist.md §7).
        :raise TooManyRequests: when the verifier pool is saturated, exactly as ``verify`` would.
        """
        await self._submit(self._dummy_verify_blocking, password)

    async def hash(self, password: str) -> str:
        """A new argon2id hash of ``password`` with the configured parameters.

        :raise TooManyRequests: when the verifier pool is saturated.
        """
        return await self._submit(self._hasher.hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when ``stored_hash`` was made with other parameters than the configured ones (cheap)."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return False  # not argon2: it never verifies, so there is no plaintext to rehash

    @property
    def in_flight(self) -> int:
        """Jobs queued or running right now (for metrics and tests)."""
        with self._lock:
            return self._pending

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def _submit(self, fn: Callable[..., T], *args: str) -> T:
        with self._lock:
            if self._pending >= self._max_pending:
                raise TooManyRequests(reason=f"password verifier saturated ({self._max_pending} in flight)")
            self._pending += 1
        try:
            future = self._executor.submit(fn, *args)
        except BaseException:
            self._release()
            raise
        # Released when the job itself ends, not when the awaiting request does: a cancelled request
        # (client gone) leaves its argon2 run going, and that memory must still count against the cap.
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _release(self, _: object = None) -> None:
        with self._lock:
            self._pending -= 1

    def _verify_blocking(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except VerifyMismatchError:
            return False
        except (InvalidHashError, VerificationError) as e:
            # A corrupt or foreign stored hash: a data problem worth a warning, but still just "no".
            log.warning("stored password hash is not a usable argon2 hash (%s)", type(e).__name__)
            return False

    def _dummy_verify_blocking(self, password: str) -> bool:
        return self._verify_blocking(self._dummy_hash.result(), password)
