"""The controller API simulator: verifies, records, serves resources, registers instances, injects faults."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from requests_oauthlib import OAuth1

from simulators.controller.scenarios import DEMO_ACCOUNT_ID, DEMO_ACCOUNT_NAME, demo_account
from simulators.controller.server import ControllerServer

KEY = "acme-3f9c0e7d2b6a4c1e8d5f7a9b0c2e4d6f"
SECRET = "secret-" + "x" * 40
RID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ControllerServer]:
    running = ControllerServer(token="tok", record_path=str(tmp_path / "received.jsonl")).start()
    running.trust(KEY, SECRET)
    yield running
    running.stop()


def call(
    server: ControllerServer, method: str, path: str, body: object = None, **kw: object
) -> requests.Response:
    auth = kw.pop("auth", OAuth1(KEY, client_secret=SECRET))
    return requests.request(method, server.url + path, json=body, auth=auth, timeout=5, **kw)  # type: ignore[arg-type]


def test_resources_round_trip(server: ControllerServer) -> None:
    assert call(server, "GET", f"aps/2/resources/{RID}").status_code == 404
    assert call(server, "PUT", f"aps/2/resources/{RID}", {"USERS": {"usage": 1}}).json()["USERS"] == {
        "usage": 1
    }
    assert call(server, "GET", f"aps/2/resources/{RID}").json() == {"aps": {"id": RID}, "USERS": {"usage": 1}}
    assert len(call(server, "GET", "aps/2/resources").json()) == 1
    assert call(server, "DELETE", f"aps/2/resources/{RID}").status_code == 204
    assert server.resource(RID) is None
    assert [r.verified for r in server.received()] == [True] * 5


def test_unsigned_or_wrongly_signed_calls_are_401(server: ControllerServer, tmp_path: Path) -> None:
    assert call(server, "GET", f"aps/2/resources/{RID}", auth=None).status_code == 401
    wrong = OAuth1(KEY, client_secret="not-the-secret")
    response = call(server, "GET", f"aps/2/resources/{RID}", auth=wrong)
    assert response.status_code == 401 and response.json()["error"] == "Unauthorized"
    lines = [json.loads(line) for line in (tmp_path / "received.jsonl").read_text().splitlines()]
    assert [(line["status"], line["verified"]) for line in lines] == [(401, False), (401, False)]
    assert "not-the-secret" not in (tmp_path / "received.jsonl").read_text()


def test_faults(server: ControllerServer) -> None:
    server.fault("GET", "/aps/2/resources", 503, times=2)
    assert [call(server, "GET", f"aps/2/resources/{RID}").status_code for _ in range(3)] == [503, 503, 404]
    server.fault("*", "/aps/2/", 0)
    with pytest.raises(requests.ConnectionError):
        call(server, "GET", f"aps/2/resources/{RID}")
    server.fault("GET", "/aps/2/", 503, times=-1)
    server.clear_faults()
    assert call(server, "GET", f"aps/2/resources/{RID}").status_code == 404


def test_registration_with_a_token_and_the_creation_hook(server: ControllerServer) -> None:
    seen: list[str] = []
    server.state.on_register = lambda document, instance_id: seen.append(instance_id) or 201  # type: ignore[func-returns-value]
    document = {
        "aps": {
            "endpoint": "https://c.example/",
            "auth": {"oauth": {"key": "new-key-0001", "secret": "s" * 20}},
        }
    }
    refused = call(server, "POST", "aps/2/applications", document, auth=None, headers={"APS-Token": "bad"})
    assert refused.status_code == 401
    created = call(server, "POST", "aps/2/applications", document, auth=None, headers={"APS-Token": "tok"})
    assert created.status_code == 201
    assert created.json()["app"]["aps"]["id"] == seen[0]
    # The new instance's key may now call back.
    signed = requests.get(
        server.url + "aps/2/resources", auth=OAuth1("new-key-0001", client_secret="s" * 20), timeout=5
    )
    assert signed.status_code == 200
    server.state.on_register = lambda document, instance_id: 500
    assert (
        call(
            server, "POST", "aps/2/applications", document, auth=None, headers={"APS-Token": "tok"}
        ).status_code
        == 502
    )
    bad = call(server, "POST", "aps/2/applications", {"aps": {}}, auth=None, headers={"APS-Token": "tok"})
    assert bad.status_code == 400


def test_the_public_base_is_what_signatures_cover() -> None:
    public = "https://apsc.example.net:6308/"
    server = ControllerServer(public_base=public).start()
    try:
        server.trust(KEY, SECRET)
        assert server.public_base == public
        # Signed for our real address (not the public one): refused.
        assert call(server, "GET", f"aps/2/resources/{RID}").status_code == 401
        signed = requests.Request(
            "GET", f"{public}aps/2/resources/{RID}", auth=OAuth1(KEY, client_secret=SECRET)
        ).prepare()
        signed.url = f"{server.url}aps/2/resources/{RID}"
        with requests.Session() as session:
            assert session.send(signed, timeout=5).status_code == 404  # verified, just no such resource
    finally:
        server.stop()


def test_account_reads_take_the_account_delay(server: ControllerServer) -> None:
    """``serve --account-delay``: a slow subscriber-account read, so the demo shows the async 202 path."""
    server.put(DEMO_ACCOUNT_ID, demo_account())
    server.state.account_delay = 0.4
    started = time.monotonic()
    account = call(server, "GET", f"aps/2/resources/{DEMO_ACCOUNT_ID}")
    assert account.status_code == 200 and account.json()["companyName"] == DEMO_ACCOUNT_NAME
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    assert call(server, "GET", f"aps/2/resources/{RID}").status_code == 404  # other reads: no delay
    assert call(server, "PUT", f"aps/2/resources/{RID}", {"USERS": {"usage": 1}}).status_code == 200
    assert time.monotonic() - started < 0.4
