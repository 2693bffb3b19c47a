"""The test forward proxy: CONNECT tunnels, absolute-form forwarding, 407, a crash-like stop, the record."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from simulators.forward_proxy import ForwardProxy
from tests.support.simulator_processes import ROOT, Simulator, Tls


def session_via(proxy_url: str, tls: Tls) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = tls.ca_pem
    session.proxies = {"https": proxy_url, "http": proxy_url}
    return session


def test_connect_tunnels_are_kept_alive_and_recorded(simulator: Simulator, tls: Tls, tmp_path: Path) -> None:
    record = tmp_path / "flows.jsonl"
    proxy = ForwardProxy(record_path=str(record)).start()
    try:
        with session_via(proxy.url, tls) as session:
            for _ in range(5):
                assert session.get(simulator.url + "/_sim/received").status_code == 200
        assert [(f["method"], f["status"]) for f in proxy.flows] == [("CONNECT", 200)]
        assert json.loads(record.read_text())["target"] == f"127.0.0.1:{simulator.port}"
    finally:
        proxy.stop()


def test_absolute_form_requests_are_forwarded() -> None:
    upstream = subprocess.Popen(
        [sys.executable, "-m", "simulators.acronis_api", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    proxy = ForwardProxy().start()
    try:
        assert upstream.stdout is not None
        url = json.loads(upstream.stdout.readline())["listening"]
        with requests.Session() as session:
            session.trust_env = False
            session.proxies = {"http": proxy.url}
            response = session.post(
                url + "/bc/idp/token",
                data={"grant_type": "client_credentials"},
                auth=("sim-client", "sim-secret"),
                timeout=5,
            )
        assert response.status_code == 200 and "access_token" in response.json()
        assert proxy.flows[0]["method"] == "POST" and proxy.flows[0]["target"] == url + "/bc/idp/token"
    finally:
        proxy.stop()
        upstream.terminate()
        upstream.wait(timeout=5)


def test_credentials_are_required_when_configured(simulator: Simulator, tls: Tls) -> None:
    proxy = ForwardProxy(credentials=("svc", "pw:1")).start()
    try:
        with session_via(proxy.url, tls) as session, pytest.raises(requests.exceptions.ProxyError):
            session.get(simulator.url + "/_sim/received", timeout=5)
        user_url = proxy.url.replace("http://", "http://svc:pw%3A1@")
        with session_via(user_url, tls) as session:
            assert session.get(simulator.url + "/_sim/received", timeout=5).ok
        assert [f["status"] for f in proxy.flows] == [407, 200]
    finally:
        proxy.stop()


def test_stop_drops_open_tunnels_like_a_crash(simulator: Simulator, tls: Tls) -> None:
    proxy = ForwardProxy().start()
    port = proxy.port
    with session_via(proxy.url, tls) as session:
        assert session.get(simulator.url + "/_sim/received").ok
        proxy.stop()
        with pytest.raises(requests.exceptions.ProxyError):
            session.get(simulator.url + "/_sim/received", timeout=2)
        restarted = ForwardProxy(port=port).start()  # same port: clients recover by themselves
        try:
            assert session.get(simulator.url + "/_sim/received", timeout=5).ok
        finally:
            restarted.stop()


def test_unreachable_target_is_502(tls: Tls) -> None:
    proxy = ForwardProxy().start()
    try:
        with session_via(proxy.url, tls) as session, pytest.raises(requests.exceptions.ProxyError):
            session.get("https://127.0.0.1:1/", timeout=5)
        assert proxy.flows[0]["status"] == 502
    finally:
        proxy.stop()
