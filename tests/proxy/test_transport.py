"""proxy/transport.py: the one backoff rule, the one in-call retry loop, and how many times we really dial."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import urllib3.util.connection

from endpoint.aps.settings import ApsSettings
from endpoint.outbox.settings import AcronisSettings
from proxy.acronis import AcronisClient, Datacenter
from proxy.controller import ControllerClient
from proxy.errors import (
    ApiRejected,
    ApiUnavailable,
    ConnectorError,
    Interrupted,
    TransportError,
    TransportTimeout,
)
from proxy.session import ProxySettings, build_session
from proxy.transport import backoff_delay, retrying
from tests.support.simulator_processes import free_port


@pytest.mark.parametrize(
    ("attempt", "rng", "expected"),
    [(1, 0.0, 0.25), (1, 1.0, 0.5), (2, 0.0, 0.5), (3, 1.0, 2.0), (10, 1.0, 8.0), (10_000, 0.0, 4.0)],
)
def test_backoff_is_exponential_capped_with_equal_jitter(attempt: int, rng: float, expected: float) -> None:
    assert backoff_delay(attempt, 0.5, 8.0, rng=lambda: rng) == expected


def test_a_retry_after_is_a_floor_never_a_ceiling() -> None:
    assert backoff_delay(1, 0.5, 8.0, floor=30.0, rng=lambda: 0.0) == 30.0
    assert backoff_delay(5, 0.5, 8.0, floor=0.1, rng=lambda: 1.0) == 8.0


class Script:
    """A call that fails with the given errors in turn, then returns "ok"; records the waits asked for."""

    def __init__(self, *errors: ConnectorError, stop: bool = False) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.waits: list[float] = []
        self.stop = stop

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return self.stop


def run(script: Script, **overrides: Any) -> str:
    options: dict[str, Any] = dict(
        retryable=lambda e: isinstance(e, TransportError),
        max_tries=4,
        budget=100.0,
        base=1.0,
        cap=8.0,
        label="t",
        wait=script.wait,
        rng=lambda: 1.0,
    )
    return retrying(script, **(options | overrides))


def test_retries_until_it_works_with_growing_waits() -> None:
    script = Script(TransportError("a"), TransportError("b"))
    assert run(script) == "ok"
    assert script.calls == 3 and script.waits == [1.0, 2.0]


def test_max_tries_bounds_the_calls() -> None:
    script = Script(*[TransportError(str(i)) for i in range(10)])
    with pytest.raises(TransportError, match="3"):
        run(script)
    assert script.calls == 4 and len(script.waits) == 3


def test_a_wait_past_the_budget_is_not_taken() -> None:
    script = Script(*[TransportError(str(i)) for i in range(10)])
    clock = iter(range(1000))
    with pytest.raises(TransportError):
        run(script, budget=2.5, monotonic=lambda: float(next(clock)))
    assert script.calls == 2  # the second wait (2 s) would have ended after the budget


def test_a_failure_that_is_not_retryable_is_raised_at_once() -> None:
    script = Script(ApiRejected("no", status=400))
    with pytest.raises(ApiRejected):
        run(script)
    assert script.calls == 1 and script.waits == []


def test_a_stop_during_a_wait_interrupts() -> None:
    script = Script(TransportError("down"), stop=True)
    with pytest.raises(Interrupted):
        run(script)
    assert script.calls == 1


def test_retry_after_sets_the_wait() -> None:
    script = Script(ApiUnavailable("busy", status=429, retry_after=5.0))
    assert run(script, retryable=lambda e: True) == "ok"
    assert script.waits == [5.0]


# -- against a dead port: every connection attempt counted ---------------------------------------------
@pytest.fixture
def dials(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    seen: list[tuple[str, int]] = []
    real = urllib3.util.connection.create_connection

    def counting(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        seen.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", counting)
    yield seen


def test_one_acronis_call_dials_a_dead_port_exactly_max_tries_times(dials: list[tuple[str, int]]) -> None:
    port = free_port()
    session = build_session(ProxySettings(require_proxy=False), {})
    settings = AcronisSettings(max_tries=4, retry_budget=30, backoff_base=0.001, backoff_max=0.001)
    client = AcronisClient(session, Datacenter(f"http://127.0.0.1:{port}", "id", "secret"), settings)
    with pytest.raises(TransportError):
        client.post_alert({"type": "x"})
    assert dials == [("127.0.0.1", port)] * 4  # was 16: 4 client tries x (1 + 3 urllib3 retries)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_one_controller_call_dials_a_dead_port_exactly_max_tries_times(
    dials: list[tuple[str, int]], method: str
) -> None:
    port = free_port()
    session = build_session(ProxySettings(require_proxy=False), {})
    settings = ApsSettings(controller_max_tries=3, controller_backoff=0.001)
    client = ControllerClient(session, f"http://127.0.0.1:{port}/", "key", "secret", settings)
    with pytest.raises(TransportError) as info:
        client.request(method, "aps/2/resources")
    assert not isinstance(info.value, TransportTimeout)
    assert dials == [("127.0.0.1", port)] * 3  # a refused POST never left, so it may be tried again
