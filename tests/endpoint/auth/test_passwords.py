"""PasswordService: argon2id from settings, off-loop execution, the in-flight cap (catalogue item 34)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator

import argon2
import pytest

from endpoint.auth.passwords import PasswordService
from endpoint.config.sections import AuthSettings
from endpoint.errors import TooManyRequests
from tests.support.builders import FAST_ARGON2, fast_hasher


class GatedPasswords(PasswordService):
    """Verifies wait on ``gate`` in the worker, and record how many run at once and on which threads."""

    def __init__(self, settings: AuthSettings) -> None:
        super().__init__(settings)
        self.gate = threading.Event()
        self.running = 0
        self.max_running = 0
        self.thread_names: set[str] = set()
        self._stats_lock = threading.Lock()

    def _verify_blocking(self, stored_hash: str, password: str) -> bool:
        with self._stats_lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.thread_names.add(threading.current_thread().name)
        try:
            assert self.gate.wait(10), "test gate never opened"
            return super()._verify_blocking(stored_hash, password)
        finally:
            with self._stats_lock:
                self.running -= 1


@pytest.fixture
def service() -> Iterator[PasswordService]:
    svc = PasswordService(AuthSettings(**FAST_ARGON2))
    yield svc
    svc.shutdown()


@pytest.fixture
def gated() -> Iterator[GatedPasswords]:
    svc = GatedPasswords(AuthSettings(**FAST_ARGON2, verify_threads=2, max_pending_verifies=4))
    yield svc
    svc.gate.set()
    svc.shutdown()


def test_verify_matches_and_mismatches(service: PasswordService) -> None:
    stored = fast_hasher().hash("correct horse")

    async def scenario() -> tuple[bool, bool]:
        return await service.verify(stored, "correct horse"), await service.verify(stored, "Correct horse")

    assert asyncio.run(scenario()) == (True, False)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not-a-hash",
        "$2b$12$C6UzMDM.H6dfI/f/IKcEeO5dS1sv7nBvpj9zB6Ji2hJZ5i6lqhxhu",  # bcrypt
        "$argon2id$v=19$m=1024,t=1,p=1$c29tZXNhbHQ$",  # truncated
    ],
)
def test_verify_against_an_unusable_hash_is_false_not_an_error(
    service: PasswordService, stored: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="endpoint.auth.passwords"):
        assert asyncio.run(service.verify(stored, "pw")) is False
    assert "not a usable argon2 hash" in caplog.text
    if stored:
        assert stored not in caplog.text


def test_hash_uses_the_configured_argon2id_parameters() -> None:
    settings = AuthSettings(argon2_time_cost=2, argon2_memory_kib=2048, argon2_parallelism=2)
    svc = PasswordService(settings)
    try:
        stored = asyncio.run(svc.hash("pw"))
        assert argon2.extract_parameters(stored) == argon2.Parameters(
            type=argon2.Type.ID,
            version=19,
            salt_len=16,
            hash_len=32,
            time_cost=2,
            memory_cost=2048,
            parallelism=2,
        )
        assert asyncio.run(svc.verify(stored, "pw")) is True
        assert svc.needs_rehash(stored) is False
        assert svc.needs_rehash(fast_hasher().hash("pw")) is True  # other parameters, either direction
        assert svc.needs_rehash("not-a-hash") is False
    finally:
        svc.shutdown()


def test_work_never_runs_on_the_calling_thread(gated: GatedPasswords) -> None:
    gated.gate.set()
    stored = fast_hasher().hash("pw")

    async def scenario() -> None:
        await gated.verify(stored, "pw")
        await gated.dummy_verify("pw")

    asyncio.run(scenario())
    assert gated.thread_names and all(name.startswith("argon2") for name in gated.thread_names)


def test_hashing_leaves_the_event_loop_free() -> None:
    svc = PasswordService(AuthSettings(argon2_time_cost=2, argon2_memory_kib=16384, argon2_parallelism=1))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    async def scenario() -> None:
        task = asyncio.create_task(ticker())
        await svc.hash("pw")
        task.cancel()

    try:
        asyncio.run(scenario())
    finally:
        svc.shutdown()
    assert ticks >= 2  # a hash run inline would have blocked the loop for its whole duration


def test_cap_holds_under_many_parallel_verifies(gated: GatedPasswords) -> None:
    stored = fast_hasher().hash("right")

    async def scenario() -> None:
        tasks = [asyncio.create_task(gated.verify(stored, f"wrong-{i}")) for i in range(20)]
        await asyncio.sleep(0)  # every task runs up to its first await
        done = {t for t in tasks if t.done()}
        pending = [t for t in tasks if not t.done()]
        # The excess is refused at once, not queued: exactly the cap is in flight.
        assert len(pending) == 4 and gated.in_flight == 4
        assert all(isinstance(t.exception(), TooManyRequests) for t in done)
        with pytest.raises(TooManyRequests):
            await gated.dummy_verify("x")  # unknown users are capped alike
        with pytest.raises(TooManyRequests):
            await gated.hash("x")
        assert gated.max_running <= 2  # the pool size
        gated.gate.set()
        assert await asyncio.gather(*pending) == [False] * 4
        assert gated.in_flight == 0
        assert await gated.verify(stored, "right") is True  # capacity is back

    asyncio.run(scenario())


def test_a_cancelled_request_keeps_its_slot_until_the_work_ends(gated: GatedPasswords) -> None:
    stored = fast_hasher().hash("right")

    async def scenario() -> None:
        tasks = [asyncio.create_task(gated.verify(stored, "wrong")) for _ in range(4)]
        await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Two are running in the pool and still hold memory; two queued ones were cancelled outright.
        assert gated.in_flight == 2
        gated.gate.set()
        deadline = time.monotonic() + 5
        while gated.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        assert gated.in_flight == 0

    asyncio.run(scenario())


def test_dummy_hash_has_the_configured_parameters() -> None:
    settings = AuthSettings(argon2_time_cost=2, argon2_memory_kib=2048, argon2_parallelism=2)
    svc = PasswordService(settings)
    try:
        asyncio.run(svc.dummy_verify("anything"))
        # White-box on purpose: same parameters as real hashes means the same cost per verify
        # (timing itself is compared end to end in test_authenticate).
        dummy = svc._dummy_hash.result()
        assert argon2.extract_parameters(dummy) == argon2.extract_parameters(asyncio.run(svc.hash("x")))
    finally:
        svc.shutdown()
