"""BodyBudget: a process-wide cap on buffered request bodies."""

from __future__ import annotations

import pytest

from endpoint.errors import Unavailable
from endpoint.web.limits import BodyBudget


def test_reservations_add_up_to_the_limit_and_are_given_back() -> None:
    budget = BodyBudget(100)
    assert budget.reserve(60) == 60
    with pytest.raises(Unavailable) as refused:
        budget.reserve(41)
    assert refused.value.retry_after == 1
    assert budget.reserved == 60  # a refusal reserves nothing
    budget.release(60)
    assert budget.reserve(100) == 100
