"""FaultInjector: drills with latency, 4xx/5xx, 429 + Retry-After, resets and 407, per host/path and rate."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import random
from collections.abc import Sequence

from mitmproxy import addonmanager, ctx, exceptions, http
from specs import META_ANSWERED_BY, META_FAULT, FaultRule, origin_of, parse_fault

log = logging.getLogger(__name__)


class _RuleState:
    """Per-rule counter and random stream, rebuilt on every configure so runs with a seed repeat exactly."""

    def __init__(self, rule: FaultRule, rng: random.Random) -> None:
        self.rule = rule
        self.rng = rng
        self.hits = 0

    def fires(self) -> bool:
        self.hits += 1
        if self.rule.every:
            return self.hits % self.rule.every == 0
        return self.rng.random() < self.rule.rate


def fault_response(rule: FaultRule) -> http.Response:
    body = json.dumps({"error": "fault_injected", "status": rule.status, "rule": rule.text})
    headers = {"Content-Type": "application/json", "X-Rig-Fault": rule.text}
    if rule.retry_after is not None:
        headers["Retry-After"] = str(rule.retry_after)
    if rule.status == 407:
        headers["Proxy-Authenticate"] = 'Basic realm="mitmproxy-drill"'
    return http.Response.make(rule.status, body, headers)


class FaultInjector:
    """Answer, delay or reset matching requests; 407 rules also answer CONNECT, where proxy auth happens."""

    def __init__(self) -> None:
        self.rules: list[_RuleState] = []

    def load(self, loader: addonmanager.Loader) -> None:
        loader.add_option(
            "faults",
            Sequence[str],
            [],
            """
            Fault drill rule "ACTION@HOSTGLOB[:PORT][/PATHGLOB][?rate=R|?every=N]"; repeat for more rules.
            ACTION is STATUS[:RETRY_AFTER] (400..599; 429 defaults to Retry-After: 1; 407 adds
            Proxy-Authenticate), delay:SECONDS, or reset. Examples: "503@api.example.com/api/*?rate=0.5",
            "429:30@*?every=3", "delay:2@apsc.example.com", "reset@*?every=10", "407@*".
            """,
        )
        loader.add_option(
            "fault_seed",
            int | None,
            None,
            "Seed for rate-based fault rules; with a seed the same requests fail on every run.",
        )

    def configure(self, updated: set[str]) -> None:
        if "faults" in updated or "fault_seed" in updated:
            seed = ctx.options.fault_seed
            states = []
            for text in ctx.options.faults:
                try:
                    rule = parse_fault(text)
                except ValueError as e:
                    raise exceptions.OptionsError(f"faults: {e}") from e
                # One stream per rule, keyed by its text: adding a rule does not change when the others fire.
                rng = random.Random(f"{seed}/{rule.text}") if seed is not None else random.Random()
                states.append(_RuleState(rule, rng))
            self.rules = states
            for state in states:
                log.info("fault rule armed: %s", state.rule.text)

    def _matching(self, flow: http.HTTPFlow, connect: bool) -> list[_RuleState]:
        req = flow.request
        origin = origin_of(flow.metadata, req.scheme, req.host, req.port)
        path = req.path.split("?", 1)[0]
        out = []
        for state in self.rules:
            rule = state.rule
            if not rule.where.matches(origin.host, origin.port):
                continue
            if connect:
                if rule.status != 407 or rule.path != "*":
                    continue
            elif rule.status == 407 and flow.client_conn.tls:
                continue  # inside an intercepted tunnel a 407 would reach the client as an origin response
            elif rule.path != "*" and not fnmatch.fnmatchcase(path, rule.path):
                continue
            out.append(state)
        return out

    def _answer(self, flow: http.HTTPFlow, rule: FaultRule) -> None:
        flow.metadata.setdefault(META_FAULT, []).append(rule.text)
        flow.metadata[META_ANSWERED_BY] = "fault"
        log.info("fault %s on %s %s", rule.text, flow.request.method, flow.request.pretty_url)
        if rule.kind == "reset":
            flow.kill()  # the client sees its connection closed with no response
        else:
            flow.response = fault_response(rule)

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(META_ANSWERED_BY) == "blocked":
            return
        for state in self._matching(flow, connect=True):
            if state.fires():
                self._answer(flow, state.rule)  # replaces a stand-in's "200 Connection established"
                return

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        for state in self._matching(flow, connect=False):
            if not state.fires():
                continue
            if state.rule.kind != "delay":
                self._answer(flow, state.rule)
                return
            flow.metadata.setdefault(META_FAULT, []).append(state.rule.text)
            log.info("fault %s: delaying %s", state.rule.text, flow.request.pretty_url)
            await asyncio.sleep(state.rule.delay)  # async, so other flows keep moving meanwhile
            if not flow.live:
                return


addons = [FaultInjector()]
