"""Fault drills on the real outbound mitmdump: each ends with zero lost outbox items."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import Rig, wait_until

ITEMS = 8


def accepted(rig: Rig) -> int:
    received = rig.received()
    return len(received["alerts"]) + len(received["workloads"])  # workloads are recorded item by item


def fault_answers(rig: Rig) -> int:
    return sum(1 for line in rig.audit() if line["answered_by"] == "fault")


def drill(rig: Rig, faults: tuple[str, ...], seed: int) -> None:
    """Queue items while the fault is active, clear it, and require every item delivered."""
    before_delivered, before_accepted = rig.outbox().get("delivered", 0), accepted(rig)
    before_faults = fault_answers(rig)
    rig.stack.restart_outbound_proxy(faults)
    rig.stack.queue_demo_items(ITEMS, seed)
    # The worker must really meet the fault (a fixed sleep raced a slow, loaded machine), then a while more.
    wait_until(lambda: fault_answers(rig) > before_faults, 60, "the worker to meet the fault", rig.diagnose)
    time.sleep(1)
    rig.stack.restart_outbound_proxy()
    wait_until(rig.delivered_everything, 60, "every queued item to be delivered", rig.diagnose)
    counts = rig.outbox()
    assert counts == {"delivered": before_delivered + ITEMS}  # nothing pending, nothing dead: zero lost
    assert accepted(rig) >= before_accepted + ITEMS  # at-least-once: every item reached the API


def test_proxy_down_then_up(rig: Rig) -> None:
    before = rig.outbox().get("delivered", 0)
    rig.stack.stop("outbound-proxy")
    rig.stack.queue_demo_items(ITEMS, 101)
    time.sleep(3)
    assert rig.outbox().get("delivered", 0) == before  # nothing went anywhere while the proxy was down
    rig.stack.restart_outbound_proxy()
    wait_until(rig.delivered_everything, 60, "delivery after the proxy came back", rig.diagnose)
    assert rig.outbox() == {"delivered": before + ITEMS}


@pytest.mark.parametrize(
    ("faults", "seed"),
    [
        (("503@eu8-cloud.acronis.com/api/*?rate=0.7",), 102),  # a 503 storm
        (("429:1@eu8-cloud.acronis.com/api/*?every=2",), 103),  # rate limiting with Retry-After
        (("407@*",), 104),  # the proxy demands credentials
    ],
    ids=["503-storm", "429-retry-after", "407-proxy-auth"],
)
def test_fault_drills_end_with_zero_lost_items(rig: Rig, faults: tuple[str, ...], seed: int) -> None:
    drill(rig, faults, seed)  # it waits for the proxy's fault answers: the drill really happened
