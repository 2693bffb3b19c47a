"""FaultInjector: each fault kind, where it applies, and deterministic rates and every-Nth counts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import faults
import pytest
from faults import FaultInjector
from mitmproxy import exceptions, flow, http
from mitmproxy.test import taddons
from specs import META_ANSWERED_BY, META_FAULT, META_ORIGIN

FlowFactory = Callable[..., http.HTTPFlow]


def fire(addon: FaultInjector, f: http.HTTPFlow) -> http.HTTPFlow:
    asyncio.run(addon.request(f))
    return f


def pattern(
    make_flow: FlowFactory,
    rules: list[str],
    n: int,
    seed: int | None = None,
    url: str = "http://api.example.com/api/x",
) -> list[bool]:
    """Which of n identical requests got a fault."""
    addon = FaultInjector()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, faults=rules, fault_seed=seed)
        return [bool(fire(addon, make_flow(url)).metadata.get(META_FAULT)) for _ in range(n)]


@pytest.mark.parametrize(
    ("rule", "status", "headers"),
    [
        ("503@api.example.com", 503, {"Retry-After": None}),
        ("503:30@api.example.com", 503, {"Retry-After": "30"}),
        ("429@*", 429, {"Retry-After": "1"}),
        ("429:120@*", 429, {"Retry-After": "120"}),
        ("500@*.example.com/api/*", 500, {"Retry-After": None}),
        ("407@*", 407, {"Proxy-Authenticate": 'Basic realm="mitmproxy-drill"'}),
    ],
)
def test_status_faults_answer(make_flow: FlowFactory, rule: str, status: int, headers: dict) -> None:
    addon = FaultInjector()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, faults=[rule])
        f = fire(addon, make_flow("http://api.example.com/api/x?token=1"))
    assert f.response and f.response.status_code == status
    for name, value in headers.items():
        assert f.response.headers.get(name) == value
    assert json.loads(f.response.content) == {"error": "fault_injected", "status": status, "rule": rule}
    assert f.metadata[META_FAULT] == [rule] and f.metadata[META_ANSWERED_BY] == "fault"


@pytest.mark.parametrize(
    ("rule", "url", "hit"),
    [
        (
            "503@api.example.com/api/alert_manager/*",
            "http://api.example.com/api/alert_manager/alerts?x=1",
            True,
        ),
        ("503@api.example.com/api/alert_manager/*", "http://api.example.com/api/other", False),
        ("503@api.example.com/api/x", "http://api.example.com/api/x?page=2", True),
        ("503@api.example.com:443", "http://api.example.com/api/x", False),
        ("503@api.example.com:443", "https://api.example.com/api/x", True),
        ("503@*.example.com", "http://API.example.com/", True),
        ("503@*.example.com", "http://example.org/", False),
    ],
)
def test_rules_match_host_port_and_path(make_flow: FlowFactory, rule: str, url: str, hit: bool) -> None:
    assert pattern(make_flow, [rule], 1, url=url) == [hit]


def test_every_nth_request(make_flow: FlowFactory) -> None:
    assert pattern(make_flow, ["503@*?every=3"], 7) == [False, False, True, False, False, True, False]


def test_rate_is_deterministic_with_a_seed(make_flow: FlowFactory) -> None:
    first = pattern(make_flow, ["503@*?rate=0.5"], 40, seed=7)
    assert first == pattern(make_flow, ["503@*?rate=0.5"], 40, seed=7)
    assert first != pattern(make_flow, ["503@*?rate=0.5"], 40, seed=8)
    assert 8 < sum(first) < 32


def test_adding_a_rule_keeps_the_others_stream(make_flow: FlowFactory) -> None:
    alone = pattern(make_flow, ["503@*?rate=0.5"], 30, seed=1)
    assert alone == pattern(make_flow, ["429@elsewhere.example.org?rate=0.5", "503@*?rate=0.5"], 30, seed=1)


@pytest.mark.parametrize(("rule", "expected"), [("503@*?rate=0", 0), ("503@*?rate=1", 20), ("503@*", 20)])
def test_rate_bounds(make_flow: FlowFactory, rule: str, expected: int) -> None:
    assert sum(pattern(make_flow, [rule], 20)) == expected


def test_reconfigure_resets_counters(make_flow: FlowFactory) -> None:
    addon = FaultInjector()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, faults=["503@*?every=2"])
        fire(addon, make_flow())
        tctx.configure(addon, faults=["503@*?every=2"], fault_seed=3)
        assert fire(addon, make_flow()).response is None


def test_reset_kills_the_flow(make_flow: FlowFactory) -> None:
    addon = FaultInjector()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, faults=["reset@*"])
        f = fire(addon, make_flow())
    assert f.response is None
    assert f.error and f.error.msg == flow.Error.KILLED_MESSAGE
    assert f.metadata[META_ANSWERED_BY] == "fault"


def test_delay_sleeps_then_later_rules_still_apply(make_flow: FlowFactory, monkeypatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(faults.asyncio, "sleep", fake_sleep)
    addon = FaultInjector()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, faults=["delay:2.5@*", "503@*/down"])
        slow = fire(addon, make_flow("http://a.example.com/up"))
        down = fire(addon, make_flow("http://a.example.com/down"))
    assert slept == [2.5, 2.5]
    assert slow.response is None and slow.metadata[META_FAULT] == ["delay:2.5@*"]
    assert META_ANSWERED_BY not in slow.metadata
    assert down.response.status_code == 503 and down.metadata[META_FAULT] == ["delay:2.5@*", "503@*/down"]


def test_matches_the_origin_after_a_standin_rewrite(make_flow: FlowFactory) -> None:
    addon = FaultInjector()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, faults=["503@acronis.example.com:443"])
        f = make_flow("http://127.0.0.1:9101/api/x")
        f.metadata[META_ORIGIN] = ("https", "acronis.example.com", 443)
        assert fire(addon, f).response.status_code == 503


def test_answered_flow_untouched(make_flow: FlowFactory) -> None:
    addon = FaultInjector()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, faults=["503@*"])
        f = make_flow()
        f.response = http.Response.make(403)
        assert fire(addon, f).response.status_code == 403


@pytest.mark.parametrize(
    ("rule", "status"),
    [
        ("407@proxy.example.com", 407),
        ("407@*", 407),
        ("407@*/api/*", None),
        ("503@*", None),
        ("reset@*", None),
        ("407@other.example.com", None),
    ],
)
def test_only_407_answers_connect(make_flow: FlowFactory, rule: str, status: int | None) -> None:
    addon = FaultInjector()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, faults=[rule])
        f = make_flow("proxy.example.com:443", method="CONNECT")
        f.response = http.Response.make(200)  # what StandIns sets for a stand-in tunnel
        addon.http_connect(f)
    assert f.response.status_code == (status or 200)
    if status:
        assert f.response.headers["Proxy-Authenticate"].startswith("Basic ")


def test_407_never_overrides_a_blocked_connect(make_flow: FlowFactory) -> None:
    addon = FaultInjector()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, faults=["407@*"])
        f = make_flow("evil.example.org:443", method="CONNECT")
        f.response = http.Response.make(403)
        f.metadata[META_ANSWERED_BY] = "blocked"
        addon.http_connect(f)
    assert f.response.status_code == 403


def test_407_not_sent_inside_a_tunnel(make_flow: FlowFactory) -> None:
    addon = FaultInjector()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, faults=["407@*"])
        assert fire(addon, make_flow("https://a.example.com/x", tls=True)).response is None
        assert fire(addon, make_flow("http://a.example.com/x")).response.status_code == 407


@pytest.mark.parametrize(
    ("options", "message"), [({"faults": ["bogus"]}, "faults"), ({"faults": ["503@*?rate=3"]}, "frequency")]
)
def test_bad_rule_is_an_options_error(options: dict, message: str) -> None:
    addon = FaultInjector()
    with taddons.context(addon) as tctx:
        with pytest.raises(exceptions.OptionsError, match=message):
            tctx.configure(addon, **options)


def test_script_loads_like_mitmdump_s(mitm_dir: Path) -> None:
    with taddons.context() as tctx:
        script = tctx.script(str(mitm_dir / "faults.py"))
        assert [type(a).__name__ for a in script.addons] == ["FaultInjector"]
