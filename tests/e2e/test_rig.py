"""Through real mitmdump processes: signed calls in, audited calls out, nothing else leaves."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import requests

from tests.e2e.conftest import Rig, wait_until
from tests.support.builders import sign

ALLOWED_HOSTS = {"eu8-cloud.acronis.com", "controller.example.net"}


def test_signed_callback_through_the_inbound_proxy(rig: Rig) -> None:
    result = rig.callback_users_read()
    assert result.returncode == 0 and "HTTP 200" in result.stdout, result.stdout + result.stderr
    inbound = [line for line in rig.audit("inbound-audit.jsonl") if line["path"] == "/callback"]
    assert inbound and inbound[-1]["status"] == 200 and inbound[-1]["mode"] == "reverse"
    headers = inbound[-1]["req_headers"]
    assert headers["X-Forwarded-Proto"] == "https" and headers["Authorization"] == "[redacted]"
    assert headers["X-CyberApp-Auth"] == "[redacted]"


def test_a_request_that_bypasses_the_public_url_fails_verification(rig: Rig) -> None:
    """Signed for the address it really calls (the endpoint's own port): not the URL the endpoint trusts."""
    direct = f"http://127.0.0.1:{rig.options.endpoint_port}/callback"
    instance = json.loads(rig.stack.files.instance.read_text())["aps"]["auth"]["oauth"]
    headers = sign("POST", direct, key=instance["key"], secret=instance["secret"])
    response = requests.post(direct, data=b"{}", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json()["err_message"] == "Authentication failed."


def test_every_outbound_flow_went_through_the_proxy_to_allowed_hosts(rig: Rig) -> None:
    received, lines = rig.startup_received, rig.startup_audit  # the demo items' delivery at start-up
    assert lines and {line["host"] for line in lines} <= ALLOWED_HOSTS
    assert not [line for line in lines if line["answered_by"] in ("blocked", "proxy")]
    posted_alerts = [
        line for line in lines if line["path"] == "/api/alert_manager/v1/alerts" and line["status"] == 200
    ]
    # Everything the simulator accepted arrived through the proxy: no direct egress.
    assert len(posted_alerts) == len(received["alerts"]) > 0
    token_lines = [line for line in lines if line["path"] == "/bc/idp/token"]
    assert token_lines and all(line["req_headers"]["Authorization"] == "[redacted]" for line in token_lines)


def test_full_lifecycle_through_both_proxies(rig: Rig) -> None:
    result = rig.controller("scenario", "lifecycle")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lifecycle: 11/11 steps as expected" in result.stdout
    controller_lines = [line for line in rig.audit() if line["host"] == "controller.example.net"]
    assert any(
        line["method"] == "PUT" and line["path"].startswith("/aps/2/resources/") for line in controller_lines
    )
    records = [
        json.loads(x) for x in (rig.stack.files.logs / "controller-received.jsonl").read_text().splitlines()
    ]
    assert records and all(record["verified"] for record in records)  # the connector's callbacks are signed
    inbound_paths = {line["path"].split("/")[1] for line in rig.audit("inbound-audit.jsonl")}
    assert {"app", "tenants", "users"} <= inbound_paths


def test_the_allowlist_blocks_an_unexpected_host(rig: Rig) -> None:
    proxy = f"http://127.0.0.1:{rig.options.outbound_port}"
    session = requests.Session()
    session.trust_env = False
    response = session.get(
        "http://unexpected.example.org/exfiltrate?x=1", proxies={"http": proxy}, timeout=10
    )
    assert response.status_code == 403 and response.json()["error"] == "egress_blocked"
    blocked = [line for line in rig.audit() if line["host"] == "unexpected.example.org"]
    assert blocked and blocked[-1]["answered_by"] == "blocked"


def test_no_usage_push_reaches_the_controller_after_its_tenants_delete(rig: Rig, tmp_path: Path) -> None:
    """A usage push still on the wire when the controller deletes the tenant (slowed down here by a
    delay drill on the outbound proxy): the DELETE is answered only after the push arrived."""
    state = tmp_path / "usage-race.json"
    received = rig.stack.files.logs / "controller-received.jsonl"

    def pushes(tenant: str) -> list[float]:
        lines = received.read_text().splitlines() if received.exists() else []
        return [
            record["ts"]
            for record in map(json.loads, lines)
            if record["method"] == "PUT" and record["path"] == f"/aps/2/resources/{tenant}"
        ]

    rig.stack.restart_outbound_proxy(("delay:3@controller.example.net/aps/2/resources/*",))
    try:
        for step in ("create-instance", "provision-tenant", "add-users", "unprovision"):
            result = rig.controller("scenario", step, "--state", str(state))
            assert result.returncode == 0, result.stdout + result.stderr
        tenant = json.loads(state.read_text())["tenant_id"]
        wait_until(lambda: bool(pushes(tenant)), 15, "the usage push to reach the controller")
    finally:
        rig.stack.restart_outbound_proxy()
    deletes = [
        line
        for line in rig.audit("inbound-audit.jsonl")
        if line["method"] == "DELETE" and line["path"] == f"/tenants/{tenant}" and line["status"] == 204
    ]
    assert len(deletes) == 1
    answered = dt.datetime.fromisoformat(deletes[0]["ts"]).timestamp() + deletes[0]["ms"] / 1000
    assert max(pushes(tenant)) < answered, "a usage push reached the controller after the tenant's DELETE"
