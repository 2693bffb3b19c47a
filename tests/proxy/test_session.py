"""The outbound session: configuration reaches the transport, the environment never does, clear failures."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.utils import get_auth_from_url

from proxy.errors import ConnectorConfigError, DirectEgressRefused, ProxyFailure, SecretNotSet
from proxy.session import ProxySettings, build_session, user_agent
from simulators.forward_proxy import ForwardProxy
from tests.support.simulator_processes import (
    PROXY_PASSWORD,
    PROXY_USER,
    ProxyProcess,
    Simulator,
    Tls,
    free_port,
    make_tls,
)
from tests.support.stub_adapter import StubAdapter

PROXY = "http://proxy.internal:3128"


def stubbed(
    settings: ProxySettings, environ: dict[str, str] | None = None
) -> tuple[requests.Session, StubAdapter]:
    session = build_session(settings, environ or {})
    stub = StubAdapter()
    session.mount("https://", stub)
    session.mount("http://", stub)
    return session, stub


def test_environment_proxy_ca_and_netrc_are_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine api.example.com login leaked password from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HTTPS_PROXY", "http://evil.example:8080")
    monkeypatch.setenv("HTTP_PROXY", "http://evil.example:8080")
    monkeypatch.setenv("ALL_PROXY", "http://evil.example:8080")
    monkeypatch.setenv("NO_PROXY", "api.example.com")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/evil-ca.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/evil-ca.pem")
    settings = ProxySettings(
        url=PROXY,
        ca_bundle="/etc/connector/ca.pem",
        client_cert="/c.pem",
        client_key="/k.pem",
        connect_timeout=1.5,
        read_timeout=7.0,
    )
    session, stub = stubbed(settings)
    session.get("https://api.example.com/x")
    session.post("http://api.example.com/y", json={})
    for call in stub.calls:
        assert call["proxies"] == {"http": PROXY, "https": PROXY}
        assert call["verify"] == "/etc/connector/ca.pem"
        assert call["cert"] == ("/c.pem", "/k.pem")
        assert call["timeout"] == (1.5, 7.0)
        assert "Authorization" not in call["headers"]
    assert session.trust_env is False


def test_a_caller_cannot_override_routing_trust_or_forget_the_timeout() -> None:
    session, stub = stubbed(ProxySettings(url=PROXY, ca_bundle="/ca.pem"))
    session.get("https://api.example.com/", verify=False, proxies={"https": None, "http": None})
    session.get("https://api.example.com/", timeout=None)
    session.get("https://api.example.com/", timeout=(1, 2))
    assert [c["proxies"]["https"] for c in stub.calls] == [PROXY] * 3
    assert [c["verify"] for c in stub.calls] == ["/ca.pem"] * 3
    assert [c["timeout"] for c in stub.calls] == [(3.05, 20.0), (3.05, 20.0), (1, 2)]


def test_direct_session_verifies_with_the_system_store_by_default() -> None:
    session, stub = stubbed(ProxySettings())
    session.get("https://api.example.com/")
    assert stub.calls[0]["proxies"] == {} and stub.calls[0]["verify"] is True
    assert stub.calls[0]["headers"]["User-Agent"] == user_agent()
    assert user_agent().startswith("acronis-aps-connector/")


def test_credentials_are_percent_encoded_and_decode_to_the_originals() -> None:
    user, password = "us@er:x", "p:ss/w%rd+ #?@é"
    settings = ProxySettings(url="http://proxy.internal:3128", username=user, password_env="PROXY_PW")
    url = settings.proxy_url({"PROXY_PW": password})
    assert url is not None and url.endswith("@proxy.internal:3128")
    assert get_auth_from_url(url) == (user, password)
    assert settings.display_url == "http://proxy.internal:3128"
    assert password not in repr(settings)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "http://u:secret@proxy:3128"}, "password"),
        ({"url": "socks5://proxy:1080"}, "http://"),
        ({"url": PROXY, "no_proxy": ("internal",)}, "require_proxy"),
        ({"url": PROXY, "password_env": "X"}, "username"),
        ({"pool_maxsize": 0}, "pool_maxsize"),
        ({"client_key": "/k.pem"}, "client_cert"),
        ({"read_timeout": 0}, "timeout"),
    ],
)
def test_bad_proxy_settings_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProxySettings(**fields)


def test_unset_password_variable_is_a_config_error() -> None:
    settings = ProxySettings(url=PROXY, username="svc", password_env="PROXY_PW")
    with pytest.raises(SecretNotSet, match="PROXY_PW") as info:
        build_session(settings, {})
    assert isinstance(info.value, ConnectorConfigError)  # one type for every unset secret variable
    assert (info.value.setting, info.value.variable) == ("proxy.password_env", "PROXY_PW")


def test_no_proxy_applies_only_when_direct_traffic_is_allowed() -> None:
    settings = ProxySettings(url=PROXY, no_proxy=(".corp.local",), require_proxy=False)
    session, stub = stubbed(settings)
    session.get("https://api.corp.local/")
    session.get("https://api.example.com/")
    assert [c["proxies"] for c in stub.calls] == [{}, {"http": PROXY, "https": PROXY}]


def test_non_http_schemes_are_refused() -> None:
    session, _ = stubbed(ProxySettings(url=PROXY))
    with pytest.raises(DirectEgressRefused):
        session.send(requests.Request("GET", "ftp://files.example.com/x").prepare())


def test_redirect_to_another_host_carries_no_credentials() -> None:
    def respond(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        if "first.example.com" in (request.url or ""):
            return 302, {"Location": "https://elsewhere.example.net/landing"}, b""
        return 200, {}, b"ok"

    session = build_session(ProxySettings(url=PROXY), {})
    stub = StubAdapter(respond)
    session.mount("https://", stub)
    session.get("https://first.example.com/", headers={"Authorization": "Bearer t0ken"})
    assert stub.calls[0]["headers"]["Authorization"] == "Bearer t0ken"
    assert "Authorization" not in stub.calls[1]["headers"]
    assert stub.calls[1]["proxies"]["https"] == PROXY  # the redirect also goes through the proxy


# --- against a real forward proxy and the simulator over TLS ----------------------------------------------


def test_through_an_authenticating_proxy_with_special_character_credentials(
    tls: Tls, tmp_path: Path, simulator: Simulator
) -> None:
    proxy = ProxyProcess(tmp_path, auth=True)
    try:
        settings = ProxySettings(url=proxy.url, username=PROXY_USER, password_env="PW", ca_bundle=tls.ca_pem)
        with build_session(settings, {"PW": PROXY_PASSWORD}) as session:
            assert session.get(simulator.url + "/_sim/received").status_code == 200
        assert [(f["method"], f["status"]) for f in proxy.flows()] == [("CONNECT", 200)]
    finally:
        proxy.close()


def test_wrong_proxy_password_is_a_proxy_failure_naming_the_proxy(
    tls: Tls, tmp_path: Path, simulator: Simulator
) -> None:
    proxy = ProxyProcess(tmp_path, auth=True)
    try:
        settings = ProxySettings(url=proxy.url, username=PROXY_USER, password_env="PW", ca_bundle=tls.ca_pem)
        with build_session(settings, {"PW": "wrong-secret"}) as session, pytest.raises(ProxyFailure) as info:
            session.get(simulator.url + "/_sim/received")
        assert info.value.proxy == proxy.url and "407" in info.value.cause
        assert "wrong-secret" not in str(info.value) and PROXY_USER not in str(info.value)
        assert simulator.received()["requests"] == []
    finally:
        proxy.close()


def test_absolute_form_407_is_a_proxy_failure_too() -> None:
    proxy = ForwardProxy(credentials=("svc", "pw")).start()
    try:
        with build_session(ProxySettings(url=proxy.url), {}) as session:
            with pytest.raises(ProxyFailure, match="407"):
                session.get(f"http://127.0.0.1:{free_port()}/")
    finally:
        proxy.stop()


def test_refused_proxy_is_a_proxy_failure_never_a_direct_attempt(simulator: Simulator, tls: Tls) -> None:
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    settings = ProxySettings(url=dead_proxy, ca_bundle=tls.ca_pem)
    with build_session(settings, {}) as session, pytest.raises(ProxyFailure, match="refused") as info:
        session.get(simulator.url + "/_sim/received")
    assert info.value.proxy == dead_proxy
    assert simulator.received()["requests"] == []


def test_ca_mismatch_is_a_proxy_failure_without_fallback(simulator: Simulator, tmp_path: Path) -> None:
    other_ca = make_tls(tmp_path)  # not the CA that signed the simulator's certificate
    proxy = ForwardProxy().start()
    try:
        settings = ProxySettings(url=proxy.url, ca_bundle=other_ca.ca_pem)
        with build_session(settings, {}) as session, pytest.raises(ProxyFailure, match="TLS") as info:
            session.get(simulator.url + "/_sim/received")
        assert "ca_bundle" in info.value.cause
        assert [f["method"] for f in proxy.flows] == ["CONNECT"]  # one attempt, through the proxy, no retry
    finally:
        proxy.stop()


class EgressGuard:
    """Replaces socket.connect: only the proxy may be dialled; everything else is refused and recorded."""

    def __init__(self, allowed: set[tuple[str, int]]) -> None:
        self.allowed = allowed
        self.blocked: list[Any] = []
        self.connected: list[Any] = []
        self._connect = socket.socket.connect

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        guard = self

        def connect(sock: socket.socket, address: Any) -> None:
            if tuple(address[:2]) not in guard.allowed:
                guard.blocked.append(address)
                raise ConnectionRefusedError(f"test: direct egress to {address} blocked")
            guard.connected.append(address)
            guard._connect(sock, address)

        monkeypatch.setattr(socket.socket, "connect", connect)


def test_require_proxy_means_no_direct_egress_at_all(
    simulator: Simulator, proxy_process: ProxyProcess, tls: Tls
) -> None:
    guard = EgressGuard({("127.0.0.1", proxy_process.port)})
    settings = ProxySettings(url=proxy_process.url, ca_bundle=tls.ca_pem)
    with build_session(settings, {}) as session, pytest.MonkeyPatch.context() as patch:
        guard.install(patch)
        assert session.get(simulator.url + "/_sim/received").ok
        # Per-call attempts to go direct or unverified change nothing.
        assert session.post(simulator.url + "/_sim/expire-tokens", proxies={}).ok
        assert session.get(simulator.url + "/_sim/received", proxies={"https": None}, verify=False).ok
        with requests.Session() as direct, pytest.raises(requests.ConnectionError):  # the guard works
            direct.get(simulator.url + "/_sim/received", verify=tls.ca_pem, timeout=2)
    assert guard.blocked == [("127.0.0.1", simulator.port)] and guard.connected
    flows = proxy_process.flows()
    assert flows and all(f["target"] == f"127.0.0.1:{simulator.port}" for f in flows)
