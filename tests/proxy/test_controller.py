"""The controller client: URL joining, OAuth 1.0 exactly as the controller verifies it, safe retries."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from urllib3.exceptions import NewConnectionError

from endpoint.aps.settings import ApsSettings
from proxy.controller import ControllerClient, controller_message, controller_url
from proxy.errors import ApiRejected, ApiUnavailable, TransportError, TransportTimeout
from proxy.session import ProxySettings, build_session
from simulators.controller.server import ControllerServer
from simulators.controller.verify import Verifier
from simulators.forward_proxy import ForwardProxy
from tests.support.simulator_processes import Tls
from tests.support.stub_adapter import StubAdapter

KEY = "acme-3f9c0e7d2b6a4c1e8d5f7a9b0c2e4d6f"
SECRET = "s3cr3t-" + "b" * 40
BASE = "https://apsc.example.net:6308/"
RID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

Answer = tuple[int, dict[str, str], bytes]


class FlakyAdapter(StubAdapter):
    """Raises the queued exceptions first, then answers like StubAdapter."""

    def __init__(self, errors: list[Exception], respond: Callable[[Any], Answer] | None = None) -> None:
        super().__init__(respond)
        self.errors = errors

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if self.errors:
            self.calls.append({"method": request.method, "error": True})
            raise self.errors.pop(0)
        return super().send(request, **kwargs)


def client(adapter: StubAdapter, base: str = BASE, tries: int = 3) -> ControllerClient:
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    sleeps: list[float] = []
    settings = ApsSettings(
        controller_connect_timeout=2.0,
        controller_read_timeout=9.0,
        controller_max_tries=tries,
        controller_backoff=0.01,
    )
    return ControllerClient(session, base, KEY, SECRET, settings, sleep=sleeps.append)


def answers(*statuses: int) -> Callable[[Any], Answer]:
    queue = list(statuses)

    def respond(request: requests.PreparedRequest) -> Answer:
        status = queue.pop(0) if len(queue) > 1 else queue[0]
        body = (
            b'{"aps": {"id": "x"}}'
            if status < 400
            else b'{"code": 1, "error": "E", "message": "No such thing."}'
        )
        return status, {"Content-Type": "application/json"}, body

    return respond


def header(call: dict[str, Any], name: str) -> str | None:
    value = call["headers"].get(name)
    return value.decode() if isinstance(value, bytes) else value


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://apsc:6308/", "https://apsc:6308/aps/2/resources"),
        ("https://apsc:6308", "https://apsc:6308/aps/2/resources"),
        ("https://gw.example/apsc", "https://gw.example/apsc/aps/2/resources"),  # no lost segment
        ("https://gw.example/apsc/", "https://gw.example/apsc/aps/2/resources"),
    ],
)
def test_urls_join_on_the_base_with_a_trailing_slash(base: str, expected: str) -> None:
    assert controller_url(base, "aps/2/resources") == expected
    assert controller_url(base, "/aps/2/resources") == expected


def test_requests_are_signed_as_the_controller_verifies_them() -> None:
    stub = StubAdapter()
    client(stub).put_resource(RID, {"USERS": {"usage": 3}}, transaction_id="tx-42", act_as=RID)
    [call] = stub.calls
    assert call["url"] == f"{BASE}aps/2/resources/{RID}"
    auth = header(call, "Authorization") or ""
    assert (
        'oauth_signature_method="HMAC-SHA1"' in auth
        and "oauth_body_hash" not in auth
        and "oauth_token" not in auth
    )
    verifier = Verifier(BASE)
    verifier.trust(KEY, SECRET)
    assert verifier.verify("PUT", f"/aps/2/resources/{RID}", auth).ok
    assert verifier.verify("PUT", f"/aps/2/resources/{RID}", auth).reason == "nonce replayed"
    other = Verifier("https://elsewhere.example/")
    other.trust(KEY, SECRET)
    assert not other.verify("PUT", f"/aps/2/resources/{RID}", auth).ok  # the signature covers the URL
    assert header(call, "APS-Transaction-ID") == "tx-42" and header(call, "APS-Resource-ID") == RID
    assert header(call, "Content-Type") == "application/json"
    assert json.loads(call["body"]) == {"USERS": {"usage": 3}}
    assert call["timeout"] == (2.0, 9.0)


def test_a_read_sends_no_body_and_no_optional_headers() -> None:
    stub = StubAdapter()
    assert client(stub).get_resource(RID) == {}
    [call] = stub.calls
    assert call["body"] is None and header(call, "Content-Type") is None
    assert header(call, "APS-Transaction-ID") is None and header(call, "APS-Resource-ID") is None


def test_idempotent_calls_retry_on_gateway_errors() -> None:
    stub = StubAdapter(answers(503, 502, 200))
    assert client(stub).get_resource(RID) == {"aps": {"id": "x"}}
    assert len(stub.calls) == 3


def test_post_is_never_retried_once_sent() -> None:
    stub = StubAdapter(answers(503, 200))
    with pytest.raises(ApiUnavailable):
        client(stub).request("POST", "aps/2/resources", {"a": 1})
    assert len(stub.calls) == 1
    timeouts = FlakyAdapter([requests.ReadTimeout("read timed out")])
    with pytest.raises(TransportTimeout):
        client(timeouts).request("POST", "aps/2/resources", {"a": 1})
    assert len(timeouts.calls) == 1


def test_post_is_retried_when_the_connection_was_never_made() -> None:
    refused = requests.ConnectionError(NewConnectionError(None, "Connection refused"))  # type: ignore[arg-type]
    stub = FlakyAdapter([refused, requests.ConnectTimeout("connect timed out")])
    assert client(stub).request("POST", "aps/2/resources", {"a": 1}) == {}
    assert len(stub.calls) == 3


def test_put_is_retried_after_a_read_timeout_and_errors_are_wrapped_once() -> None:
    stub = FlakyAdapter([requests.ReadTimeout("x"), requests.ReadTimeout("x"), requests.ReadTimeout("x")])
    with pytest.raises(TransportTimeout) as caught:
        client(stub).put_resource(RID, {})
    assert len(stub.calls) == 3 and isinstance(caught.value.__cause__, requests.ReadTimeout)
    with pytest.raises(TransportError):
        client(FlakyAdapter([requests.ConnectionError("reset")]), tries=1).get_resource(RID)


def test_client_errors_carry_the_controllers_message_and_are_not_retried() -> None:
    stub = StubAdapter(answers(404))
    with pytest.raises(ApiRejected) as caught:
        client(stub).get_resource(RID)
    assert caught.value.status == 404 and "No such thing." in str(caught.value)
    assert len(stub.calls) == 1


def test_odd_answers() -> None:
    redirect = StubAdapter(lambda r: (302, {"Location": "https://evil.example/"}, b""))
    with pytest.raises(ApiRejected):
        client(redirect).get_resource(RID)
    assert len(redirect.calls) == 1  # never followed
    html = StubAdapter(lambda r: (200, {"Content-Type": "text/html"}, b"<html>"))
    with pytest.raises(ApiUnavailable):
        client(html).get_resource(RID)
    assert controller_message("<html>\n  Bad  gateway</html>") == "<html> Bad gateway</html>"
    assert "s3cr3t" not in repr(client(StubAdapter()))


@pytest.fixture
def controller(tls: Tls) -> Iterator[ControllerServer]:
    server = ControllerServer(tls=(tls.cert_pem, tls.key_pem)).start()
    server.trust(KEY, SECRET)
    yield server
    server.stop()


def test_through_the_real_session_and_a_forward_proxy(controller: ControllerServer, tls: Tls) -> None:
    proxy = ForwardProxy().start()
    try:
        session = build_session(ProxySettings(url=proxy.url, ca_bundle=tls.ca_pem), {})
        controller.put(RID, {"aps": {"id": RID}, "name": "T"})
        live = ControllerClient(session, controller.url, KEY, SECRET, ApsSettings())
        assert live.get_resource(RID, transaction_id="tx-1")["name"] == "T"
        live.put_resource(RID, {"USERS": {"usage": 2}}, transaction_id="tx-1")
        session.close()
    finally:
        proxy.stop()
    received = controller.received()
    assert [(r.method, r.verified, r.status) for r in received] == [("GET", True, 200), ("PUT", True, 200)]
    assert all(r.headers.get("APS-Transaction-ID") == "tx-1" for r in received)
    assert "oauth_body_hash" not in received[1].headers["Authorization"]
    port = controller.url.rsplit(":", 1)[1].rstrip("/")
    assert [f["method"] + " " + f["target"] for f in proxy.flows] == [f"CONNECT 127.0.0.1:{port}"]
    assert controller.resource(RID) == {"aps": {"id": RID}, "name": "T", "USERS": {"usage": 2}}


def test_a_retry_after_a_503_is_re_signed_never_a_replayed_nonce(
    controller: ControllerServer, tls: Tls
) -> None:
    # The controller records the nonce of the request it answered 503; a verbatim resend would be refused
    # as a replay (401). The session never resends; the client's one retry loop signs every try afresh.
    controller.put(RID, {"aps": {"id": RID}, "name": "T"})
    controller.fault("GET", f"/aps/2/resources/{RID}", 503, times=1)
    session = build_session(ProxySettings(ca_bundle=tls.ca_pem), {})
    try:
        settings = ApsSettings(controller_max_tries=3, controller_backoff=0.01)
        live = ControllerClient(session, controller.url, KEY, SECRET, settings)
        assert live.get_resource(RID)["name"] == "T"
    finally:
        session.close()
    received = controller.received()
    assert [(r.method, r.verified, r.status) for r in received] == [("GET", True, 503), ("GET", True, 200)]
    assert [r.reason for r in received] == ["verified", "verified"]  # the retry was not a replay


def test_the_session_itself_never_resends(controller: ControllerServer, tls: Tls) -> None:
    controller.put(RID, {"aps": {"id": RID}, "name": "T"})
    controller.fault("GET", f"/aps/2/resources/{RID}", 503, times=1)
    session = build_session(ProxySettings(ca_bundle=tls.ca_pem), {})
    try:
        live = ControllerClient(session, controller.url, KEY, SECRET, ApsSettings(controller_max_tries=1))
        with pytest.raises(ApiUnavailable, match="503"):
            live.get_resource(RID)
    finally:
        session.close()
    assert [r.status for r in controller.received()] == [503]
