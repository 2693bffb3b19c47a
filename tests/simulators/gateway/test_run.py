"""A scenario step: status and answer checked, one printed line, envelope rules on every answer."""

from __future__ import annotations

import io
import json
from typing import Any

import requests

from simulators.gateway.run import GatewayRun, all_of, no_payload, payload_of, response_type


class CannedSender:
    def __init__(self, status: int, answer: Any, echo: bool = True) -> None:
        self.status, self.answer, self.echo = status, answer, echo
        self.sent: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def send(self, envelope: dict[str, Any], **options: Any) -> requests.Response:
        self.sent.append((envelope, options))
        answer = self.answer
        if self.echo and isinstance(answer, dict):
            answer = {**answer, "request_id": envelope["request_id"]}
        response = requests.Response()
        response.status_code = self.status
        response._content = json.dumps(answer).encode()
        return response


OK = {"type": "cti.a.p.acgw.response.v1.0~a.p.success_no_content.v1.0", "response_id": "r"}


def test_an_expected_answer_prints_ok_and_sends_the_options() -> None:
    out, sender = io.StringIO(), CannedSender(200, OK)
    run = GatewayRun(sender, {}, cyberapp_auth="abc", out=out)
    result = run.call(
        "s", "step", "a.p.enablement.reset.v1.0", tenant_id="t", credentials=True, check=no_payload
    )
    assert result.ok and out.getvalue() == "s [step] a.p.enablement.reset.v1.0 -> 200 ok\n"
    envelope, options = sender.sent[0]
    assert envelope["context"]["tenant_id"] == "t" and options == {
        "token_kind": "valid",
        "cyberapp_auth": "abc",
    }
    run.call("s", "step", "a.p.partner.mirroring.get_state.v1.0", tenant_id="t")
    assert sender.sent[1][1]["cyberapp_auth"] is None  # mirroring carries no credentials


def test_status_echo_and_checks_each_make_a_step_unexpected() -> None:
    out = io.StringIO()
    assert not GatewayRun(CannedSender(500, OK), {}, out=out).call("s", "x", "c.v1.0", tenant_id="t").ok
    assert "UNEXPECTED (wanted 200)" in out.getvalue()
    assert not GatewayRun(CannedSender(200, OK, echo=False), {}).call("s", "x", "c.v1.0", tenant_id="t").ok
    with_payload = {**OK, "payload": {}}
    result = GatewayRun(CannedSender(200, with_payload), {}).call(
        "s", "x", "c.v1.0", tenant_id="t", check=no_payload
    )
    assert result.why == "a payload where none is defined"
    error = {"response_id": "r"}
    result = GatewayRun(CannedSender(401, error), {}).call("s", "x", "c.v1.0", tenant_id="t", expected=401)
    assert result.why == "error without err_message"


def test_checks_compose() -> None:
    answer = {"type": "cti.a.p.acgw.response.v1.1~a.p.partner.mirroring.reset.ok.v1.0"}
    assert all_of(response_type("~a.p.partner.mirroring.reset.ok.v1.0"), no_payload)(answer) is None
    assert "wanted" in (response_type("~other.v1.0")(answer) or "")
    assert payload_of([1]) is None and payload_of({"payload": [1]}) == [1]


def test_fail_records_an_unsent_step() -> None:
    out = io.StringIO()
    run = GatewayRun(CannedSender(200, OK), {}, out=out)
    run.fail("s", "map", "nothing to map")
    assert not run.results[0].ok and out.getvalue() == "s [map] not sent: nothing to map\n"
