"""The simulator's HTTP surface (in-process, AsyncHTTPTestCase) and its command line (a real process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
import tornado.testing
import tornado.web

from simulators.acronis_api import make_app, parse_clients
from simulators.acronis_state import SimulatorState
from simulators.keyring import load_keys
from tests.simulators.test_acronis_state import ALERT, ITEM, basic
from tests.support.simulator_processes import ROOT, Simulator, Tls


class SimulatorTest(tornado.testing.AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        self.state = SimulatorState({"c1": "secret"})
        return make_app(self.state, max_items=5)

    def call(
        self, path: str, body: Any = None, token: str | None = None, method: str = "POST", **headers: str
    ) -> Any:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        raw = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
        return self.fetch(path, method=method, body=raw, headers=headers, allow_nonstandard_methods=True)

    def token(self) -> str:
        response = self.call(
            "/bc/idp/token", "grant_type=client_credentials", Authorization=basic("c1", "secret")
        )
        assert response.code == 200 and response.headers["Cache-Control"] == "no-store"
        return json.loads(response.body)["access_token"]

    def test_both_token_paths_issue_tokens(self) -> None:
        response = self.call(
            "/api/2/idp/token", "grant_type=client_credentials", Authorization=basic("c1", "secret")
        )
        assert response.code == 200 and json.loads(response.body)["expires_on"] > 0
        assert self.call("/bc/idp/token", "grant_type=client_credentials").code == 401

    def test_alert_is_accepted_with_an_id_and_recorded(self) -> None:
        response = self.call("/api/alert_manager/v1/alerts", ALERT, self.token())
        assert response.code == 200
        alert_id = json.loads(response.body)["id"]
        assert self.state.snapshot()["alerts"][0]["id"] == alert_id

    def test_schema_errors_are_400_with_details(self) -> None:
        response = self.call("/api/alert_manager/v1/alerts", {**ALERT, "tenant_id": "x"}, self.token())
        assert response.code == 400 and "tenant_id" in response.body.decode()
        assert self.call("/api/alert_manager/v1/alerts", "{not json", self.token()).code == 400
        assert self.state.snapshot()["alerts"] == []

    def test_workloads_answer_204_and_check_client_and_size(self) -> None:
        token = self.token()
        response = self.call("/api/workload_management/v5/workloads", {"items": [ITEM, ITEM]}, token)
        assert response.code == 204 and response.body == b""
        assert self.call("/api/workload_management/v5/workloads", {"items": [ITEM] * 6}, token).code == 400
        other = {**ITEM, "client_id": "c2"}
        assert self.call("/api/workload_management/v5/workloads", {"items": [other]}, token).code == 400
        assert self.state.snapshot()["workload_batches"] == 1

    def test_missing_or_expired_token_is_401(self) -> None:
        assert self.call("/api/alert_manager/v1/alerts", ALERT).code == 401
        token = self.token()
        assert self.call("/_sim/expire-tokens").code == 200
        response = self.call("/api/alert_manager/v1/alerts", ALERT, token)
        assert response.code == 401 and "invalid_token" in response.headers["WWW-Authenticate"]

    def test_faults_429_retry_after_then_5xx_then_normal(self) -> None:
        token = self.token()
        faults = {
            "faults": [
                {"endpoint": "alerts", "status": 429, "retry_after": "7"},
                {"endpoint": "alerts", "status": 502},
            ]
        }
        assert self.call("/_sim/faults", faults).code == 200
        first = self.call("/api/alert_manager/v1/alerts", ALERT, token)
        assert first.code == 429 and first.headers["Retry-After"] == "7"
        assert self.call("/api/alert_manager/v1/alerts", ALERT, token).code == 502
        assert self.call("/api/alert_manager/v1/alerts", ALERT, token).code == 200
        statuses = [r["status"] for r in self.state.snapshot()["requests"] if r["endpoint"] == "alerts"]
        assert statuses == [429, 502, 200]

    def test_bad_fault_specs_are_400_and_delete_clears(self) -> None:
        assert self.call("/_sim/faults", {"faults": [{"endpoint": "moon"}]}).code == 400
        assert self.call("/_sim/faults", {"nope": 1}).code == 400
        self.call("/_sim/faults", {"faults": [{"status": 500, "count": -1}]})
        assert self.call("/_sim/faults", method="DELETE").code == 204 and self.state.faults == []

    def test_received_and_reset(self) -> None:
        self.call("/api/alert_manager/v1/alerts", ALERT, self.token())
        received = json.loads(self.call("/_sim/received", method="GET").body)
        assert received["tokens_issued"] == 1 and len(received["alerts"]) == 1
        assert self.call("/_sim/reset").code == 204
        assert json.loads(self.call("/_sim/received", method="GET").body)["alerts"] == []

    def test_unknown_routes_and_verbs(self) -> None:
        assert self.call("/api/elsewhere", {}).code == 404
        assert self.call("/api/alert_manager/v1/alerts", method="GET").code == 405


def test_parse_clients_reads_secrets_from_the_environment() -> None:
    assert parse_clients(["c1:SECRET_A"], {"SECRET_A": "s"}) == {"c1": "s"}
    assert parse_clients([], {}) == {"sim-client": "sim-secret"}
    with pytest.raises(SystemExit):
        parse_clients(["c1:UNSET"], {})


def test_command_line_serves_tls_and_records(simulator: Simulator, tls: Tls, tmp_path: Path) -> None:
    # The shared fixture already runs `python -m simulators.acronis_api --tls-cert ... --tls-key ...`.
    assert simulator.url.startswith("https://127.0.0.1:")
    with requests.get(simulator.url + "/_sim/received", verify=tls.ca_pem, timeout=5) as response:
        assert response.json()["tokens_issued"] == 0
    record = tmp_path / "record.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.acronis_api", "--port", "0", "--record", str(record)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = json.loads(proc.stdout.readline())["listening"]
        assert url.startswith("http://")
        with requests.post(
            url + "/bc/idp/token",
            data={"grant_type": "client_credentials"},
            timeout=5,
            auth=("sim-client", "sim-secret"),
        ) as response:
            assert response.status_code == 200
        assert json.loads(record.read_text().splitlines()[0])["endpoint"] == "token"
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0


def test_command_line_keeps_the_jwks_keys_in_the_keys_dir(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.acronis_api", "--port", "0", "--keys-dir", str(keys)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = json.loads(proc.stdout.readline())["listening"]
        with requests.get(url + "/api/idp/v1/keys", timeout=5) as response:
            kids = [key["kid"] for key in response.json()["keys"]]
        assert [k.kid for k in load_keys(keys)] == kids and len(kids) == 1
        with requests.post(url + "/_sim/jwks/rotate", json={}, timeout=5) as response:
            assert response.json()["signing_kid"] == load_keys(keys)[0].kid != kids[0]
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0
