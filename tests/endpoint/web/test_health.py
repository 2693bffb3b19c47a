"""GET /healthz: 200 when the database and the outbound proxy answer, 503 "degraded" otherwise, no details."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import peewee as pw
import pytest
import requests

from models.db import DatabaseSettings
from proxy.session import ProxySettings
from tests.endpoint.web.gateway import gateway_endpoint, gateway_settings, wait_jwks
from tests.support.builders import make_settings
from tests.support.gateway_tokens import JwksServer
from tests.support.live_endpoint import LiveEndpoint, live_endpoint
from tests.support.simulator_processes import make_tls


@pytest.fixture
def live(database: pw.Database, db_settings: DatabaseSettings) -> Iterator[LiveEndpoint]:
    with live_endpoint(make_settings(database=db_settings)) as endpoint:
        yield endpoint


def test_healthy(live: LiveEndpoint) -> None:
    response = requests.get(live.base_url + "/healthz", timeout=5)  # no credentials needed
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "proxy": "not configured"}
    assert response.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    "error",
    [
        pw.OperationalError("unable to open database file /srv/secret/connector.db"),
        pw.InterfaceError("connection to db-7.internal:5432 lost (password=hunter2)"),
        ConnectionRefusedError(111, "Connection refused: db-7.internal"),
    ],
    ids=type,
)
def test_unreachable_database_is_503_degraded_without_details(
    live: LiveEndpoint, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    def ping() -> None:
        raise error

    monkeypatch.setattr("endpoint.web.health._ping_database", ping)
    caplog.set_level(logging.WARNING, logger="endpoint.web.health")
    response = requests.get(live.base_url + "/healthz", timeout=5)
    assert response.status_code == 503
    assert response.json() == {"status": "degraded", "database": "unreachable", "proxy": "not configured"}
    for detail in ("secret", "db-7", "hunter2", "Traceback"):
        assert detail not in response.text
    [warning] = [r for r in caplog.records if r.name == "endpoint.web.health"]
    assert warning.getMessage() == f"health check: database unreachable ({type(error).__name__})"


def test_other_failures_are_not_swallowed_as_degraded(
    live: LiveEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    def ping() -> None:
        raise KeyError("bug")

    monkeypatch.setattr("endpoint.web.health._ping_database", ping)
    response = requests.get(live.base_url + "/healthz", timeout=5)
    assert response.status_code == 500
    assert response.json() == {"code": 500, "message": "Internal error."}


def test_only_get(live: LiveEndpoint) -> None:
    assert requests.post(live.base_url + "/healthz", data=b"", timeout=5).status_code == 405


# -- the outbound proxy --------------------------------------------------------------------------
@pytest.fixture
def proxy_port() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def live_with_proxy(db_settings: DatabaseSettings, url: str) -> AbstractContextManager[LiveEndpoint]:
    return live_endpoint(make_settings(database=db_settings, proxy=ProxySettings(url=url, connect_timeout=5)))


def test_a_reachable_proxy_is_ok(
    database: pw.Database, db_settings: DatabaseSettings, proxy_port: int
) -> None:
    with live_with_proxy(db_settings, f"http://127.0.0.1:{proxy_port}") as live:
        response = requests.get(live.base_url + "/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "proxy": "ok"}


def test_an_unreachable_proxy_is_reported_degraded_but_still_serving(
    database: pw.Database, db_settings: DatabaseSettings, proxy_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with live_with_proxy(db_settings, f"http://squid-user@127.0.0.1:{closed}") as live:
        response = requests.get(live.base_url + "/healthz", timeout=5)
    # Callbacks never go outbound: the instance still serves, so no 503 that would make a balancer pull it.
    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "database": "ok", "proxy": "unreachable"}
    for detail in (str(closed), "127.0.0.1", "squid-user", "Refused"):
        assert detail not in response.text
    assert any(r.getMessage().startswith("health check: outbound proxy unreachable") for r in caplog.records)


def test_the_probe_runs_off_the_ioloop_with_a_short_timeout(
    database: pw.Database, db_settings: DatabaseSettings, monkeypatch: pytest.MonkeyPatch, proxy_port: int
) -> None:
    seen: list[tuple[str, float]] = []

    def probe(settings: ProxySettings, timeout: float) -> str:
        seen.append((threading.current_thread().name, timeout))
        return "ok"

    monkeypatch.setattr("endpoint.web.health.probe_proxy", probe)
    with live_with_proxy(db_settings, f"http://127.0.0.1:{proxy_port}") as live:
        assert requests.get(live.base_url + "/healthz", timeout=5).status_code == 200
    [(thread, timeout)] = seen
    assert thread != "live-endpoint" and not thread.startswith("db")  # neither the loop nor the db threads
    assert timeout == 2.0  # capped below the proxy's own connect timeout (5 s)


# -- the gateway's JWKS ------------------------------------------------------------------------------
def test_with_the_gateway_jwt_on_the_jwks_state_is_shown(
    database: pw.Database, db_settings: DatabaseSettings, tmp_path: Path
) -> None:
    tls = make_tls(tmp_path)
    with JwksServer(tls.cert_pem, tls.key_pem) as server:
        with gateway_endpoint(gateway_settings(db_settings, server, tls)) as live:
            response = requests.get(live.base_url + "/healthz", timeout=5)
        server.status = 503  # a second instance starts while the JWKS is down
        with live_endpoint(gateway_settings(db_settings, server, tls)) as down:
            state = wait_jwks(down, "no keys", last_error="JwksRefused")
            degraded = requests.get(down.base_url + "/healthz", timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["jwks"]["state"] == "ok" and body["jwks"]["keys"] == 1
    assert body["jwks"]["last_error"] is None and body["jwks"]["last_success"].endswith("+00:00")
    # No keys: JWT callbacks get 503, but the instance stays in rotation (every instance fetches the same
    # JWKS, and its APS routes still work): 200, "degraded", and only a category, never the URL.
    assert degraded.status_code == 200 and degraded.json()["status"] == "degraded"
    assert state == {"state": "no keys", "keys": 0, "last_success": None, "last_error": "JwksRefused"}
    assert "127.0.0.1" not in degraded.text and "idp" not in degraded.text
