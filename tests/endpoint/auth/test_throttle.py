"""FailureThrottle: 429 after the limit, recovery after the window, bounded memory (catalogue item 34)."""

from __future__ import annotations

import pytest

from endpoint.auth.throttle import FailureThrottle
from endpoint.errors import TooManyRequests


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def fail(throttle: FailureThrottle, key: str, times: int) -> None:
    for _ in range(times):
        throttle.check(key)
        throttle.record_failure(key)


def test_429_after_limit_failures(clock: FakeClock) -> None:
    throttle = FailureThrottle(limit=3, window=300, clock=clock, name="identity")
    fail(throttle, "alice", 3)
    with pytest.raises(TooManyRequests) as info:
        throttle.check("alice")
    assert info.value.message == "Too many requests."
    assert "identity" in info.value.reason and "alice" not in info.value.reason
    throttle.check("bob")  # keys are independent


def test_recovers_after_the_window(clock: FakeClock) -> None:
    throttle = FailureThrottle(limit=3, window=300, clock=clock)
    fail(throttle, "alice", 3)
    clock.now += 299.9
    with pytest.raises(TooManyRequests):
        throttle.check("alice")
    clock.now += 0.1
    throttle.check("alice")
    assert len(throttle) == 0  # the expired window was pruned


def test_window_opens_at_the_first_failure(clock: FakeClock) -> None:
    throttle = FailureThrottle(limit=2, window=300, clock=clock)
    fail(throttle, "alice", 1)
    clock.now += 299
    fail(throttle, "alice", 1)
    with pytest.raises(TooManyRequests):
        throttle.check("alice")
    clock.now += 1  # 300 s after the first failure: a fresh window
    fail(throttle, "alice", 1)
    throttle.check("alice")


def test_reset_forgets_failures(clock: FakeClock) -> None:
    throttle = FailureThrottle(limit=2, window=300, clock=clock)
    fail(throttle, "alice", 2)
    throttle.reset("alice")
    throttle.check("alice")
    throttle.reset("never-seen")  # no error


def test_tracked_keys_are_capped(clock: FakeClock) -> None:
    throttle = FailureThrottle(limit=1, window=300, clock=clock, max_keys=100)
    for i in range(5000):
        throttle.record_failure(f"sprayed-{i}")
    assert len(throttle) == 100
    with pytest.raises(TooManyRequests):
        throttle.check("sprayed-4999")  # the newest windows are the ones kept
    throttle.check("sprayed-0")


def test_expired_windows_are_pruned(clock: FakeClock) -> None:
    throttle = FailureThrottle(limit=5, window=60, clock=clock)
    for i in range(50):
        throttle.record_failure(f"k{i}")
    clock.now += 61
    throttle.record_failure("fresh")
    assert len(throttle) == 1


def test_long_keys_cost_a_fixed_size(clock: FakeClock) -> None:
    throttle = FailureThrottle(limit=1, window=60, clock=clock)
    throttle.record_failure("x" * 100_000)
    assert all(len(slot) == 16 for slot in throttle._windows)  # digests, not the attacker's string
    with pytest.raises(TooManyRequests):
        throttle.check("x" * 100_000)


@pytest.mark.parametrize("kwargs", [{"limit": 0, "window": 1}, {"limit": 1, "window": 0}])
def test_rejects_nonsense_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        FailureThrottle(**kwargs)  # type: ignore[arg-type]
