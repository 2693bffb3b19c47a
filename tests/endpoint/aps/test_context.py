"""ApsContext carries the transaction id into log lines; stored JSON columns round-trip."""

from __future__ import annotations

from endpoint.aps.context import ApsContext, Outcome, dumps, loads_object


def test_log_extra_carries_the_transaction_and_the_instance() -> None:
    ctx = ApsContext("i-1", "https://c/", "key", 1, "tx-9", "sync")
    assert ctx.log_extra == {"fields": {"transaction": "tx-9", "instance": "i-1"}}


def test_json_columns() -> None:
    assert loads_object(None) == {} and loads_object("") == {} and loads_object("[1]") == {}
    assert loads_object(dumps({"b": 1, "a": [2]})) == {"a": [2], "b": 1}
    assert dumps({"b": 1, "a": 2}) == '{"a":2,"b":1}'


def test_outcomes_default_to_no_headers() -> None:
    assert Outcome(204).headers == {} and Outcome(204).body is None
