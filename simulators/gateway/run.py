"""One scenario run: each step sends a callback as the gateway, checks status and answer, prints one line.

``<scenario> [<step>] <callback> -> <status> ok`` or ``... UNEXPECTED (<why>)``. Tenant ids live in ``state``
(a JSON file on the command line), so a scenario run again acts on the same tenants (and checks that the
endpoint answers the same, e.g. the same mirrored vendor id).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

import requests

from simulators.gateway.envelopes import DEFAULT_APP_CODE, DEFAULT_DATACENTER, endpoint_id, envelope
from simulators.gateway.sender import response_body

# A check looks at the answer's body and returns what is wrong with it, or None.
Check = Callable[[Any], str | None]


class Sender(Protocol):
    def send(self, envelope: dict[str, Any], **options: Any) -> requests.Response: ...


@dataclass
class StepResult:
    scenario: str
    step: str
    callback: str
    status: int
    ok: bool
    body: Any = None
    why: str = ""


@dataclass
class GatewayRun:
    sender: Sender
    state: dict[str, Any]
    cyberapp_auth: str | None = None  # X-CyberApp-Auth for the mapped (v1) callbacks
    app_code: str = DEFAULT_APP_CODE
    datacenter_url: str = DEFAULT_DATACENTER
    out: TextIO | None = None
    results: list[StepResult] = field(default_factory=list)

    def call(
        self,
        scenario: str,
        step: str,
        callback: str,
        payload: Any = None,
        *,
        tenant_id: str,
        expected: int = 200,
        check: Check | None = None,
        token_kind: str = "valid",
        credentials: bool = False,
    ) -> StepResult:
        """Send one callback; ``credentials`` adds X-CyberApp-Auth (the mirroring callbacks carry none)."""
        body = envelope(
            callback,
            payload,
            endpoint=endpoint_id(callback, self.app_code),
            tenant_id=tenant_id,
            datacenter_url=self.datacenter_url,
        )
        auth = self.cyberapp_auth if credentials else None
        response = self.sender.send(body, token_kind=token_kind, cyberapp_auth=auth)
        answer = response_body(response)
        why = "" if response.status_code == expected else f"wanted {expected}"
        if not why:
            why = _echo_problem(body, answer, expected) or (check(answer) if check else None) or ""
        result = StepResult(scenario, step, callback, response.status_code, not why, answer, why)
        self.results.append(result)
        verdict = "ok" if result.ok else f"UNEXPECTED ({why})"
        self.print(f"{scenario} [{step}] {callback} -> {response.status_code} {verdict}")
        return result

    def fail(self, scenario: str, step: str, why: str) -> None:
        """A step that could not be sent (an earlier answer lacked what it needs)."""
        self.results.append(StepResult(scenario, step, "-", 0, False, None, why))
        self.print(f"{scenario} [{step}] not sent: {why}")

    def print(self, line: str) -> None:
        if self.out is not None:
            print(line, file=self.out, flush=True)


def _echo_problem(request: dict[str, Any], answer: Any, status: int) -> str | None:
    """Every answer is an envelope: an object with ``type`` and ``response_id``, echoing ``request_id``;
    errors add ``err_message``."""
    if not isinstance(answer, dict):
        return "the answer is not a JSON object"
    if answer.get("request_id") != request["request_id"] and status < 400:
        return "request_id not echoed"
    if "response_id" not in answer:
        return "no response_id"
    if status >= 400 and not answer.get("err_message"):
        return "error without err_message"
    return None


def payload_of(answer: Any) -> Any:
    return answer.get("payload") if isinstance(answer, dict) else None


def no_payload(answer: Any) -> str | None:
    return "a payload where none is defined" if isinstance(answer, dict) and "payload" in answer else None


def response_type(suffix: str) -> Check:
    """The success type must end with ``suffix`` (e.g. ``~a.p.partner.mirroring.enable.ok.v1.0``)."""

    def check(answer: Any) -> str | None:
        kind = answer.get("type", "") if isinstance(answer, dict) else ""
        return None if kind.endswith(suffix) else f"type {kind!r}, wanted …{suffix}"

    return check


def all_of(*checks: Check) -> Check:
    def check(answer: Any) -> str | None:
        return next((why for c in checks if (why := c(answer))), None)

    return check
