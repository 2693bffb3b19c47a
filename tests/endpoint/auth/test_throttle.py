"""FailureThrottle: 429 after the limit, recovery after the window, bounded memory (catalogue item 34)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from endpoint.auth.throttle import FailureThrottle, LoginThrottle
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


# -- LoginThrottle: no one's failures lock out anyone else ------------------------------------------
PROXY = "10.0.0.5"  # every callback arrives from the inbound proxy's one address


def login_throttle(clock: Callable[[], float], **limits: float) -> LoginThrottle:
    settings: dict[str, float] = {
        "identity_limit": 3,
        "pair_limit": 2,
        "client_soft_limit": 4,
        "window": 300,
        "max_delay": 2.0,
        **limits,
    }
    return LoginThrottle(clock=clock, **settings)  # type: ignore[arg-type]


def test_fifty_identities_failing_from_one_client_never_refuse_another() -> None:
    throttle = login_throttle(FakeClock())
    for i in range(50):
        throttle.check(f"someone.typing.{i}", PROXY)
        throttle.record_failure(f"someone.typing.{i}", PROXY)
    throttle.check("other.partner.admin", PROXY)  # no TooManyRequests


def test_an_identity_over_its_limit_is_refused_from_every_client_and_alone() -> None:
    throttle = login_throttle(FakeClock(), pair_limit=100)
    for client in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
        throttle.record_failure("jdoe", client)
    with pytest.raises(TooManyRequests) as refused:
        throttle.check("jdoe", "203.0.113.9")
    assert "jdoe" not in refused.value.reason and refused.value.retry_after == pytest.approx(300)
    throttle.check("someone.else", "203.0.113.9")


def test_a_pair_over_its_limit_is_refused_for_that_pair_only() -> None:
    throttle = login_throttle(FakeClock())
    for _ in range(2):
        throttle.record_failure("jdoe", PROXY)
    with pytest.raises(TooManyRequests, match="client and identity"):
        throttle.check("jdoe", PROXY)
    throttle.check("jdoe", "198.51.100.1")
    throttle.check("other", PROXY)


def test_the_client_delay_starts_past_the_soft_limit_grows_and_is_capped() -> None:
    throttle = login_throttle(FakeClock(), identity_limit=1000, pair_limit=1000)
    delays = [throttle.record_failure(f"guess-{i}", PROXY) for i in range(12)]
    assert delays[:4] == [0.0] * 4
    assert delays[4] > 0 and delays[4:8] == sorted(delays[4:8]) and len(set(delays[4:8])) == 4
    assert max(delays) == 2.0 and delays[-1] == 2.0
    assert throttle.record_failure("guess", "198.51.100.1") == 0.0  # another client's count is its own


def test_success_resets_identity_and_pair_but_not_the_client() -> None:
    throttle = login_throttle(FakeClock(), identity_limit=2, pair_limit=2, client_soft_limit=2)
    throttle.record_failure("jdoe", PROXY)
    throttle.record_failure("mary", PROXY)
    throttle.record_success("jdoe", PROXY)
    throttle.record_failure("jdoe", PROXY)
    throttle.check("jdoe", PROXY)  # one failure since the success: under both limits
    assert throttle.record_failure("carl", PROXY) > 0  # the client's 4th failure is still counted


def test_windows_expire() -> None:
    clock = FakeClock()
    throttle = login_throttle(clock)
    for _ in range(3):
        throttle.record_failure("jdoe", f"198.51.100.{_}")
    with pytest.raises(TooManyRequests):
        throttle.check("jdoe", PROXY)
    clock.now += 300
    throttle.check("jdoe", PROXY)
