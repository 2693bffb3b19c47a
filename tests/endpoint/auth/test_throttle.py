"""FailureThrottle (429 after the limit, window, bounded memory) and LoginThrottle (never global)."""

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


def test_retry_after_is_zero_under_the_limit_then_counts_down(clock: FakeClock) -> None:
    throttle = FailureThrottle(limit=2, window=300, clock=clock)
    fail(throttle, "alice", 1)
    assert throttle.retry_after("alice") == 0.0
    fail(throttle, "alice", 1)
    clock.now += 100
    assert throttle.retry_after("alice") == pytest.approx(200)
    assert throttle.retry_after("bob") == 0.0


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
    """The production bug: one address's failures under many identities locked out every tenant."""
    throttle = login_throttle(FakeClock())
    for i in range(50):
        throttle.check(f"someone.typing.{i}", PROXY)
        throttle.record_failure(f"someone.typing.{i}", PROXY)
    throttle.check("other.partner.admin", PROXY)  # no TooManyRequests
    throttle.record_success("other.partner.admin", PROXY)
    throttle.check("someone.typing.0", PROXY)  # one failure each: the failing identities are not refused


def test_an_identity_over_its_limit_is_refused_from_every_client_and_alone() -> None:
    throttle = login_throttle(FakeClock(), pair_limit=100)
    for client in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
        throttle.record_failure("jdoe", client)
    for client in ("203.0.113.9", "198.51.100.1", PROXY):
        with pytest.raises(TooManyRequests, match="this identity") as refused:
            throttle.check("jdoe", client)
        assert "jdoe" not in refused.value.reason and client not in refused.value.reason
        assert refused.value.retry_after == pytest.approx(300)
    throttle.check("someone.else", "198.51.100.1")


def test_a_pair_over_its_limit_is_refused_for_that_pair_only() -> None:
    throttle = login_throttle(FakeClock())
    for _ in range(2):
        throttle.record_failure("jdoe", PROXY)
    with pytest.raises(TooManyRequests, match="client and identity") as refused:
        throttle.check("jdoe", PROXY)
    assert "jdoe" not in refused.value.reason and PROXY not in refused.value.reason
    assert refused.value.retry_after == pytest.approx(300)
    throttle.check("jdoe", "198.51.100.1")  # same identity, another client
    throttle.check("other", PROXY)  # same client, another identity


def test_pair_keys_do_not_collide_across_the_separator() -> None:
    throttle = login_throttle(FakeClock(), identity_limit=100, pair_limit=1)
    throttle.record_failure("b|c", "a")
    throttle.check("c", "a|b")  # naive "client|identity" would make both "a|b|c"
    with pytest.raises(TooManyRequests):
        throttle.check("b|c", "a")


def test_when_both_refuse_the_longer_wait_is_the_one_reported() -> None:
    clock = FakeClock()
    throttle = login_throttle(clock)
    throttle.record_failure("jdoe", "198.51.100.1")  # opens jdoe's identity window at t=1000
    clock.now += 100
    throttle.record_failure("jdoe", PROXY)  # opens the (PROXY, jdoe) window at t=1100
    throttle.record_failure("jdoe", PROXY)  # identity: 3/3 until 1300; pair: 2/2 until 1400
    with pytest.raises(TooManyRequests, match="client and identity") as refused:
        throttle.check("jdoe", PROXY)
    assert refused.value.retry_after == pytest.approx(300)
    with pytest.raises(TooManyRequests, match="this identity") as refused:
        throttle.check("jdoe", "198.51.100.1")
    assert refused.value.retry_after == pytest.approx(200)


def test_the_client_delay_starts_past_the_soft_limit_grows_and_is_capped() -> None:
    throttle = login_throttle(FakeClock(), identity_limit=1000, pair_limit=1000)
    delays = [throttle.record_failure(f"guess-{i}", PROXY) for i in range(12)]
    assert delays == [0.0] * 4 + [0.5, 1.0, 1.5, 2.0] + [2.0] * 4  # linear, capped at 2 x soft limit
    assert throttle.record_failure("guess", "198.51.100.1") == 0.0  # a fresh client: no delay


def test_the_recommended_defaults_delay_from_the_21st_failure_to_2s_at_the_40th() -> None:
    throttle = LoginThrottle(
        identity_limit=10, pair_limit=5, client_soft_limit=20, window=300, max_delay=2.0, clock=FakeClock()
    )
    delays = [throttle.record_failure(f"guess-{i}", PROXY) for i in range(45)]
    assert delays[:20] == [0.0] * 20
    assert delays[20] == pytest.approx(0.1) and delays[29] == pytest.approx(1.0)
    assert delays[39:] == [2.0] * 6


def test_a_zero_max_delay_never_delays() -> None:
    throttle = login_throttle(FakeClock(), identity_limit=1000, pair_limit=1000, max_delay=0)
    assert {throttle.record_failure(f"guess-{i}", PROXY) for i in range(20)} == {0.0}


def test_success_resets_identity_and_pair_but_not_the_client() -> None:
    throttle = login_throttle(FakeClock(), identity_limit=2, pair_limit=2, client_soft_limit=2)
    throttle.record_failure("jdoe", PROXY)
    throttle.record_failure("mary", PROXY)
    throttle.record_failure("mary", "198.51.100.1")
    throttle.record_success("jdoe", PROXY)
    throttle.record_failure("jdoe", PROXY)
    throttle.check("jdoe", PROXY)  # one failure since the success: under both limits
    with pytest.raises(TooManyRequests, match="this identity"):
        throttle.check("mary", "203.0.113.9")  # jdoe's success did not wipe mary's failures
    assert throttle.record_failure("carl", PROXY) == 2.0  # PROXY's 4th failure (2nd if reset: 0.0)


def test_success_resets_the_pair_of_that_client_only() -> None:
    throttle = login_throttle(FakeClock(), identity_limit=100, pair_limit=2)
    for client in (PROXY, PROXY, "198.51.100.1", "198.51.100.1"):
        throttle.record_failure("jdoe", client)
    throttle.record_success("jdoe", PROXY)
    throttle.check("jdoe", PROXY)
    with pytest.raises(TooManyRequests, match="client and identity"):
        throttle.check("jdoe", "198.51.100.1")


def test_memory_stays_bounded_under_identity_spraying() -> None:
    throttle = login_throttle(FakeClock(), max_keys=100)
    for i in range(5000):
        throttle.record_failure(f"sprayed-{i}", PROXY)
    assert len(throttle) == 100 + 100 + 1  # identities, pairs, the one client
    for i in range(5000):
        throttle.record_failure(f"sprayed-{i}", f"198.51.100.{i}")
    assert len(throttle) == 300
    assert all(
        len(slot) == 16 for counter in (throttle._identity, throttle._pair) for slot in counter._windows
    )
    throttle.check("other.partner.admin", PROXY)


def test_windows_expire() -> None:
    clock = FakeClock()
    throttle = login_throttle(clock, identity_limit=3, pair_limit=2, client_soft_limit=1)
    for i in range(3):
        throttle.record_failure("jdoe", f"198.51.100.{i}")
    throttle.record_failure("mary", PROXY)
    throttle.record_failure("mary", PROXY)
    with pytest.raises(TooManyRequests):
        throttle.check("jdoe", PROXY)
    with pytest.raises(TooManyRequests):
        throttle.check("mary", PROXY)
    clock.now += 299.9
    with pytest.raises(TooManyRequests):
        throttle.check("jdoe", PROXY)
    clock.now += 0.1
    throttle.check("jdoe", PROXY)
    throttle.check("mary", PROXY)
    assert throttle.record_failure("carl", PROXY) == 0.0  # the client's window expired too
    assert len(throttle) == 3  # only carl's fresh windows remain


@pytest.mark.parametrize("kwargs", [{"client_soft_limit": 0}, {"max_delay": -1}, {"pair_limit": 0}])
def test_login_throttle_rejects_nonsense_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        login_throttle(FakeClock(), **kwargs)
