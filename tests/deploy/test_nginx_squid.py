"""deploy/nginx and deploy/squid in front of a real connector: signed calls in, proxied and audited calls out.

Inbound: the controller simulator runs the APS lifecycle against nginx's https:// URL (the endpoint's
public_base_url); nginx must forward the URI byte for byte (a percent-escape survives, and a control
nginx with a URI part in proxy_pass breaks the signature) and set the forwarding headers itself.
Outbound: the endpoint's controller callbacks and the outbox worker's Acronis pushes go through squid with
basic auth; a wrong password is a ProxyFailure (407) that loses nothing; squid denies anything off its
allowlist.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from proxy.errors import ProxyFailure
from proxy.session import ProxySettings, build_session
from simulators.controller.scenarios import ScenarioRun, create_instance, remove_instance
from simulators.controller.signing import ControllerSigner, Instance
from tests.deploy import proxies
from tests.deploy.conftest import (
    ADMIN_PASSWORD,
    PROXY_PASSWORD,
    PROXY_PASSWORD_ENV,
    Deployment,
    start_endpoint,
)
from tests.deploy.proxies import ACRONIS_HOST, CONTROLLER_HOST, PROXY_USER
from tests.support.builders import sign

pytestmark = pytest.mark.timeout(90)
SPOOFED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Real-Ip": "198.51.100.9",
    "X-Scheme": "http",
    "Forwarded": "for=192.0.2.1;proto=http",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Port": "80",
}


def https(
    d: Deployment, port: int, method: str, target: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """One request with the target sent exactly as given (http.client does not normalize it)."""
    context = ssl.create_default_context(cafile=str(d.ca_pem))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", f"localhost:{port}")
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def signed_get(d: Deployment, port: int, target: str, instance_id: str) -> int:
    """GET ``target`` signed like the controller, over the PUBLIC URL (nginx's), sent to ``port``."""
    oauth = json.loads(d.instance.read_text())["aps"]["auth"]["oauth"]
    aps = {
        "APS-Instance-ID": instance_id,
        "APS-Controller-URI": d.controller_uri,
        "APS-Transaction-ID": str(uuid.uuid4()),
    }
    headers = sign("GET", d.public_url.rstrip("/") + target, aps, key=oauth["key"], secret=oauth["secret"])
    return https(d, port, "GET", target, headers)[0]


def test_signed_lifecycle_through_nginx_with_callbacks_through_squid(deployment: Deployment) -> None:
    d = deployment
    state = str(d.base / "scenario-state.json")
    result = d.controller(
        "scenario", "lifecycle", "--state", state, "--controller-uri", d.controller_uri, "--poll-cap", "0.2"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    steps = re.search(r"lifecycle: (\d+)/(\d+) steps as expected", result.stdout)
    assert steps and steps[1] == steps[2] and int(steps[1]) >= 10, result.stdout
    # The connector called the controller back (async tenant lookup, resource updates) through squid,
    # and the controller verified each of those signatures independently.
    records = [json.loads(line) for line in d.log("controller").splitlines()]
    assert records and all(record["verified"] for record in records)
    # squid logs a tunnel when it closes; the endpoint keeps its tunnel to the controller alive, so a
    # restart (SIGTERM, drained) closes it. Besides, nothing here resolves controller.example.net but squid.
    d.supervisor.stop("endpoint")
    start_endpoint(d)
    d.wait_for_log(
        "squid", rf"TCP_TUNNEL/200 \d+ CONNECT {CONTROLLER_HOST}:{d.controller_port} {PROXY_USER} "
    )
    assert re.search(r'"POST /app HTTP/1\.1" 20[01] ', d.log("nginx"))


def test_a_user_callback_through_nginx_leaves_no_credential_in_any_log(deployment: Deployment) -> None:
    d = deployment
    password_file = d.base / "admin-password"
    password_file.write_text(ADMIN_PASSWORD + "\n")
    result = d.controller(
        "callback",
        "vendor.app.users_read.v1.0",
        "--login",
        "admin",
        "--password-file",
        str(password_file),
        "--datacenter",
        d.datacenter,
    )
    assert result.returncode == 0 and "HTTP 200" in result.stdout, result.stdout + result.stderr
    logs = {name: d.log(name) for name in ("nginx", "endpoint", "squid")}
    assert '"POST /callback HTTP/1.1" 200 ' in logs["nginx"]
    auth = base64.b64encode(f"admin:{json.dumps({'password': ADMIN_PASSWORD})}".encode()).decode()
    for name, text in logs.items():
        for secret in (ADMIN_PASSWORD, auth, "oauth_signature", PROXY_PASSWORD):
            assert secret not in text, f"{secret!r} in the {name} log"


def test_a_percent_encoded_path_keeps_its_signature(deployment: Deployment) -> None:
    d = deployment
    signer = ControllerSigner(Instance.from_document(d.instance), verify=str(d.ca_pem), timeout=10)
    run = ScenarioRun(signer, d.controller_uri, {"instance_id": str(uuid.uuid4())})
    try:
        create_instance(run)
        assert run.results[-1].ok, run.results[-1]
        instance_id = run.state["instance_id"]
        # requests would unescape %2D before signing; http.client sends exactly these bytes.
        encoded = "/app/" + instance_id.replace("-", "%2D", 1)
        assert signed_get(d, d.nginx_port, encoded, instance_id) == 200
        # Negative control: the same file with a URI part in proxy_pass (the classic mistake) forwards
        # nginx's decoded path, the rebuilt URL no longer matches what was signed, and the call is a 401.
        cert, key = d.cert("nginx-uri-part", "localhost", "127.0.0.1")
        broken = proxies.start_nginx(
            d.supervisor,
            "nginx-uri-part",
            d.base,
            upstream=d.endpoint_port,
            cert=cert,
            key=key,
            uri_part=True,
        )
        assert signed_get(d, broken, "/app/" + instance_id, instance_id) == 200  # it does proxy
        assert signed_get(d, broken, encoded, instance_id) == 401
    finally:
        remove_instance(run)
        signer.close()
        d.supervisor.stop("nginx-uri-part")


def test_the_endpoint_sees_nginxs_address_not_a_spoofed_one(deployment: Deployment) -> None:
    d = deployment
    # /healthz is not served through the proxy (endpoint.health_via_proxy): any route logs the client.
    status, headers, _ = https(d, d.nginx_port, "GET", "/healthz", SPOOFED)
    assert status == 404
    correlation = headers["X-Correlation-Id"]
    deadline = time.monotonic() + 5
    while not (lines := [r for r in d.endpoint_requests() if r.get("correlation") == correlation]):
        assert time.monotonic() < deadline, "no access line for the request in the endpoint log"
        time.sleep(0.05)
    # With $proxy_add_x_forwarded_for (append) the endpoint would log 203.0.113.7 here.
    assert lines[0]["client"] == "127.0.0.1"


class Echo(ThreadingHTTPServer):
    """An upstream that records the raw request line and headers nginx sends it."""

    daemon_threads = True

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), EchoHandler)


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the endpoint does
    server: Echo

    def do_GET(self) -> None:
        # The request line as received: self.path has a leading "//" collapsed by http.server itself.
        target = self.requestline.split(" ")[1]
        self.server.seen.append(
            {"target": target, "headers": self.headers.items(), "peer": self.client_address}
        )
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[Echo]:
    server = Echo()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_nginx_forwards_the_raw_uri_and_only_its_own_forwarding_headers(
    deployment: Deployment, echo: Echo
) -> None:
    d = deployment
    cert, key = d.cert("nginx-echo", "localhost", "127.0.0.1")
    port = proxies.start_nginx(
        d.supervisor, "nginx-echo", d.base, upstream=echo.server_address[1], cert=cert, key=key
    )
    targets = [
        "/tenants//%2e%2e/a%2Fb%20c/./d/../e?q=a%2Fb&r=//c%3D",
        "//callback",
        "/app/%41%2D%7e",
    ]
    secrets = {"Authorization": 'OAuth oauth_signature="c2lnbmF0dXJl"', "X-CyberApp-Auth": "YWRtaW46c2VjcmV0"}
    try:
        for target in targets:
            assert https(d, port, "GET", target, {**SPOOFED, **secrets})[0] == 200
    finally:
        d.supervisor.stop("nginx-echo")
    assert [seen["target"] for seen in echo.seen] == targets  # byte for byte
    for seen in echo.seen:
        names = [name.lower() for name, _ in seen["headers"]]
        headers = {name.lower(): value for name, value in seen["headers"]}
        assert names.count("x-forwarded-for") == 1 and headers["x-forwarded-for"] == "127.0.0.1"
        assert headers["x-forwarded-proto"] == "https"
        assert not {"x-real-ip", "x-scheme", "forwarded", "x-forwarded-host", "x-forwarded-port"} & set(names)
        assert headers["authorization"] == secrets["Authorization"]  # the endpoint needs these intact
        assert headers["x-cyberapp-auth"] == secrets["X-CyberApp-Auth"]
    assert len({seen["peer"] for seen in echo.seen}) == 1  # one kept-alive upstream connection
    access_log = (d.base / "nginx-echo" / "connector.access.log").read_text()
    assert all(secret not in access_log for secret in ("c2lnbmF0dXJl", "YWRtaW46c2VjcmV0"))


def test_nginx_refuses_tls_below_1_3_and_bodies_over_1_mib(deployment: Deployment) -> None:
    d = deployment
    context = ssl.create_default_context(cafile=str(d.ca_pem))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", d.nginx_port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError):
            context.wrap_socket(raw, server_hostname="localhost")
    context = ssl.create_default_context(cafile=str(d.ca_pem))
    conn = http.client.HTTPSConnection("127.0.0.1", d.nginx_port, context=context, timeout=10)
    try:
        conn.putrequest("POST", "/callback", skip_host=True)
        conn.putheader("Host", "localhost")
        conn.putheader("Content-Length", str(1024 * 1024 + 1))
        conn.endheaders()  # nginx answers from the header alone; the body is never sent
        response = conn.getresponse()
        assert response.status == 413
        assert response.getheader("Server") == "nginx"  # server_tokens off: no version
    finally:
        conn.close()


def test_outbox_push_through_squid_with_proxy_auth(deployment: Deployment) -> None:
    d = deployment
    queued = d.run(
        ["-m", "endpoint", "outbox", "--config", str(d.config), "demo", "--count", "6", "--seed", "7"]
    )
    assert queued.returncode == 0 and "6 item(s) queued" in queued.stdout, queued.stdout + queued.stderr
    pending_before = d.outbox().get("pending", 0)
    delivered_before = d.outbox().get("delivered", 0)
    received_before = d.received()
    attempts_before = d.sql("SELECT SUM(attempts) FROM outbox_item")

    refused = d.push("not-the-password")
    output = refused.stdout + refused.stderr
    assert refused.returncode == 1, output
    assert f"outbound proxy http://127.0.0.1:{d.squid_port}: proxy authentication required (407)" in output
    assert "not-the-password" not in output and PROXY_PASSWORD not in output
    # Nothing lost, nothing sent, no attempt spent: the items wait for the proxy to accept them.
    assert d.outbox().get("pending", 0) == pending_before >= 6 and "dead" not in d.outbox()
    assert d.sql("SELECT SUM(attempts) FROM outbox_item") == attempts_before
    assert d.received() == received_before

    delivered = d.push(PROXY_PASSWORD)
    assert delivered.returncode == 0, delivered.stdout + delivered.stderr
    assert d.outbox() == {"delivered": delivered_before + pending_before}
    received = d.received()
    new_items = sum(len(received[k]) - len(received_before[k]) for k in ("alerts", "workloads"))
    assert new_items == pending_before
    target = f"CONNECT {ACRONIS_HOST}:{d.acronis_port} {PROXY_USER} "
    d.wait_for_log("squid", rf"TCP_DENIED/407 \d+ {target}")
    squid_log = d.wait_for_log("squid", rf"TCP_TUNNEL/200 \d+ {target}")
    assert "not-the-password" not in squid_log and PROXY_PASSWORD not in squid_log


def proxy_answer(d: Deployment, request_line: str, credentials: str | None) -> str:
    """The status line squid answers to one raw request."""
    head = f"{request_line}\r\nHost: {request_line.split()[1]}\r\n"
    if credentials is not None:
        head += f"Proxy-Authorization: Basic {base64.b64encode(credentials.encode()).decode()}\r\n"
    with socket.create_connection(("127.0.0.1", d.squid_port), timeout=5) as sock:
        sock.sendall((head + "\r\n").encode())
        return sock.recv(256).split(b"\r\n", 1)[0].decode()


@pytest.mark.parametrize(
    ("request_line", "credentials", "status"),
    [
        ("CONNECT {acronis}:{acronis_port} HTTP/1.1", None, 407),
        ("CONNECT {acronis}:{acronis_port} HTTP/1.1", "svc-connector:wrong", 407),
        ("CONNECT example.org:443 HTTP/1.1", "good", 403),  # not on the allowlist
        ("CONNECT {acronis}:22 HTTP/1.1", "good", 403),  # allowed host, other port
        ("CONNECT 127.0.0.1:{acronis_port} HTTP/1.1", "good", 403),  # IP literal
        ("CONNECT {controller}:{acronis_port} HTTP/1.1", "good", 403),  # the other host's port
        ("GET http://{acronis}:{acronis_port}/ HTTP/1.1", "good", 403),  # no plain-http egress
    ],
)
def test_squid_denies_what_is_not_allowlisted(
    deployment: Deployment, request_line: str, credentials: str | None, status: int
) -> None:
    d = deployment
    line = request_line.format(acronis=ACRONIS_HOST, controller=CONTROLLER_HOST, acronis_port=d.acronis_port)
    if credentials == "good":
        credentials = f"{PROXY_USER}:{PROXY_PASSWORD}"
    assert proxy_answer(d, line, credentials).startswith(f"HTTP/1.1 {status} ")


def test_the_connector_reports_a_denied_tunnel_as_a_proxy_failure(deployment: Deployment) -> None:
    d = deployment
    settings = ProxySettings(
        url=f"http://127.0.0.1:{d.squid_port}", username=PROXY_USER, password_env=PROXY_PASSWORD_ENV
    )
    session = build_session(settings, {PROXY_PASSWORD_ENV: PROXY_PASSWORD})
    with pytest.raises(ProxyFailure, match=r"the proxy refused the tunnel \(403 Forbidden\)"):
        session.get("https://example.org/", timeout=5)
    session.close()
