"""The real server on a loopback port: every callback over HTTP, envelopes, status codes, replays, logs."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import jsonschema
import peewee as pw
import pytest
import requests

from endpoint.callbacks.settings import CallbacksSettings
from models import Nonce, Organization, OrganizationMapping, RequestLedger, User
from models.db import DatabaseSettings
from tests.endpoint.web.gateway import V11_ENDPOINT, bearer_callback, gateway_endpoint, gateway_settings
from tests.support.builders import CONSUMER_SECRET, PUBLIC_URL, cyberapp_auth, make_settings, sign
from tests.support.gateway_tokens import (
    OTHER_ENDPOINT,
    JwksServer,
    claims,
    corrupt,
    hs256_with_public_key,
    token,
    unsigned,
)
from tests.support.live_endpoint import CALLBACK_PREFIX, ENDPOINT_ID, LiveEndpoint, live_endpoint
from tests.support.simulator_processes import Tls, make_tls
from tests.support.two_partner_tenancy import ADMIN_PASSWORD, TENANT_A, Tenancy, build_tenancy, snapshot

UUID_CHARS = set("0123456789abcdef-")
RESPONSE_PREFIX = "cti.a.p.acgw.response.v1.0~"


@pytest.fixture
def tenancy(database: pw.Database) -> Tenancy:
    return build_tenancy()


@pytest.fixture
def live(tenancy: Tenancy, db_settings: DatabaseSettings) -> Iterator[LiveEndpoint]:
    with live_endpoint(make_settings(database=db_settings)) as endpoint:
        yield endpoint


def access_lines(caplog: pytest.LogCaptureFixture, count: int = 1) -> list[logging.LogRecord]:
    """The access-log records; the line is written just after the response is flushed, so wait a bit."""
    deadline = time.monotonic() + 2
    while True:
        lines = [r for r in caplog.records if r.name == "endpoint.access"]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.01)


def assert_envelope(
    response: requests.Response, status: int, response_type: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) <= {"type", "request_id", "response_id", "payload", "err_message"}
    assert set(body["response_id"]) <= UUID_CHARS and len(body["response_id"]) == 36
    if response_type is not None:
        assert body["type"] == RESPONSE_PREFIX + response_type
    if status >= 400:
        assert body["err_message"] and "Traceback" not in response.text
        assert "payload" not in body
    return body


def test_enablement_lifecycle_over_http(live: LiveEndpoint, tenancy: Tenancy) -> None:
    body = assert_envelope(live.callback("a.p.enablement.read.v1.0"), 200, "a.p.enablement.read.ok.v1.0")
    assert body["payload"] == {"vendor_tenant_id": tenancy.partner.id}
    write = {
        "vendor_tenant_id": tenancy.partner.id,
        "acronis_tenant_id": "11111111-2222-4333-8444-555555555555",
    }
    body = assert_envelope(
        live.callback("a.p.enablement.write.v1.0", write), 200, "a.p.success_no_content.v1.0"
    )
    assert "payload" not in body
    assert_envelope(live.callback("a.p.enablement.write.v1.0", write), 200)  # the same ids again
    remap = {**write, "acronis_tenant_id": "99999999-2222-4333-8444-555555555555"}
    assert assert_envelope(live.callback("a.p.enablement.write.v1.0", remap), 409)["err_message"]
    body = assert_envelope(live.callback("a.p.enablement.read.v1.0"), 200)
    assert body["payload"]["acronis_tenant_id"] == write["acronis_tenant_id"]
    assert_envelope(live.callback("a.p.topology.read.v1.0", {}), 200, "a.p.topology.read.ok.v1.0")
    assert_envelope(live.callback("a.p.enablement.reset.v1.0"), 200, "a.p.success_no_content.v1.0")
    assert (
        not OrganizationMapping.select().where(OrganizationMapping.organization == tenancy.customer).exists()
    )


def test_user_callbacks_over_http(live: LiveEndpoint, tenancy: Tenancy) -> None:
    body = assert_envelope(
        live.callback("vendor.app.users_read.v1.0", tenant_id=TENANT_A),
        200,
        "vendor.app.users_read_success.v1.0",
    )
    assert [item["name"] for item in body["payload"]["items"]] == ["User 0", "User 1", "User 2"]
    assert all(set(item) == {"id", "name", "email"} for item in body["payload"]["items"])
    new = {"login": "New.User", "name": "New", "email": "new@example.net"}
    assert_envelope(live.callback("vendor.app.user_write.v1.0", new, tenant_id=TENANT_A), 200)
    assert_envelope(live.callback("vendor.app.user_write.v1.0", new, tenant_id=TENANT_A), 409)
    user = User.get(User.login == "new.user")
    reset = live.callback("vendor.app.reset_password.v1.0", {"id": user.id}, tenant_id=TENANT_A)
    password = assert_envelope(reset, 200, "vendor.app.reset_password_success.v1.0")["payload"]["password"]
    assert len(password) >= 22
    me = live.callback("vendor.app.users_read.v1.0", tenant_id=TENANT_A, login="NEW.USER", password=password)
    assert me.status_code == 403  # authenticated (a customer user), but the acting org is not a partner
    update = {"id": user.id, "name": "Renamed", "email": "r@example.net"}
    assert_envelope(live.callback("vendor.app.user_update.v1.0", update, tenant_id=TENANT_A), 200)
    assert_envelope(live.callback("vendor.app.user_delete.v1.0", {"id": user.id}, tenant_id=TENANT_A), 200)
    assert_envelope(live.callback("vendor.app.user_delete.v1.0", {"id": user.id}, tenant_id=TENANT_A), 404)


def test_cross_tenant_user_callbacks_are_403_and_change_nothing(live: LiveEndpoint, tenancy: Tenancy) -> None:
    before = snapshot()
    victim = {"id": tenancy.customer_users[0].id}
    for name, payload in [
        ("vendor.app.users_read.v1.0", None),
        ("vendor.app.user_delete.v1.0", victim),
        ("vendor.app.reset_password.v1.0", victim),
    ]:
        response = live.callback(name, payload, login="other", tenant_id=TENANT_A)
        assert_envelope(response, 403)
    assert snapshot() == before


def test_idempotent_retry_returns_the_stored_response(live: LiveEndpoint, tenancy: Tenancy) -> None:
    request_id = str(uuid.uuid4())
    payload = {"login": "retry.user", "name": "R", "email": "r@example.net"}
    first = assert_envelope(
        live.callback("vendor.app.user_write.v1.0", payload, tenant_id=TENANT_A, request_id=request_id), 200
    )
    again = assert_envelope(
        live.callback("vendor.app.user_write.v1.0", payload, tenant_id=TENANT_A, request_id=request_id), 200
    )  # re-signed with a fresh nonce
    assert again == first
    other = {**payload, "login": "another.user"}
    assert_envelope(
        live.callback("vendor.app.user_write.v1.0", other, tenant_id=TENANT_A, request_id=request_id), 409
    )


def test_unknown_callback_is_400_only_after_authentication(live: LiveEndpoint, tenancy: Tenancy) -> None:
    assert_envelope(live.callback("vendor.app.nope.v1.0", {}), 400)
    assert_envelope(live.callback("vendor.app.nope.v1.0", {}, password="wrong"), 401)
    assert_envelope(live.callback("vendor.app.nope.v1.0", {}, secret="wrong-secret-0000"), 401)


def test_method_content_type_and_size_limits(live: LiveEndpoint, tenancy: Tenancy) -> None:
    response = live.signed("GET", "/callback")
    assert_envelope(response, 405)
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    form = sign("POST", live.public_base + "/callback", form_type, body=b"a=1")
    response = requests.post(live.base_url + "/callback", data=b"a=1", headers=form, timeout=10)
    assert_envelope(response, 400)
    response = live.signed(
        "POST", "/callback", body=b"{}", headers={"Content-Type": "text/plain; x=application/json"}
    )
    assert_envelope(response, 400)


def test_oversized_content_length_gets_413_before_the_body_is_sent(
    live: LiveEndpoint, tenancy: Tenancy
) -> None:
    host, port = live.base_url.removeprefix("http://").split(":")
    headers = sign("POST", live.public_base + "/callback")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        # Only the head: the answer must come without a single body byte (no 1 MiB upload to refuse).
        conn.sendall(
            f"POST /callback HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {1024 * 1024 + 1}\r\n\r\n".encode()
        )
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += conn.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413")


def test_chunked_body_over_the_limit_is_cut_off(live: LiveEndpoint, tenancy: Tenancy) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(300):
            yield b"a" * 8192

    headers = sign("POST", live.public_base + "/callback")
    try:
        response = requests.post(live.base_url + "/callback", data=chunks(), headers=headers, timeout=10)
        assert response.status_code in (400, 413)
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
        pass  # Tornado resets the connection once the limit is crossed mid-stream


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"a": 1} trailing',
        b"[]",
        b'"text"',
        b'{"a": NaN}',
        b"\xef\xbb\xbf{}",
        b"\xff\xfe{\x00}\x00",
        b"[" * 10_000,
        b'{"a": 1' + b"0" * 5000 + b"}",
        b'{"type": 1, "type": 2}',
        b"\xc3\x28",
    ],
)
def test_invalid_json_is_400_never_500(live: LiveEndpoint, tenancy: Tenancy, body: bytes) -> None:
    before = snapshot()
    headers = {"X-CyberApp-Auth": cyberapp_auth("admin", ADMIN_PASSWORD)}
    assert_envelope(live.signed("POST", "/callback", body=body, headers=headers), 400)
    assert snapshot() == before


def test_replay_over_http_is_401(live: LiveEndpoint, tenancy: Tenancy) -> None:
    body = json.dumps({"x": 1}).encode()
    headers = sign("POST", live.public_base + "/callback")
    first = requests.post(live.base_url + "/callback", data=body, headers=headers, timeout=10)
    second = requests.post(live.base_url + "/callback", data=body, headers=headers, timeout=10)
    assert first.status_code == 400  # authenticated, then the body fails the envelope schema
    assert second.status_code == 401


def enablement_read_body() -> bytes:
    return json.dumps(
        {
            "type": "cti.a.p.acgw.request.v1.0~a.p.empty.v1.0",
            "request_id": str(uuid.uuid4()),
            "created_at": "2026-11-22T10:00:00Z",
            "context": {
                "callback_id": CALLBACK_PREFIX + "a.p.enablement.read.v1.0",
                "endpoint_id": "cti.a.p.acgw.endpoint.v1.0~vendor.app.endpoint.v1.0",
                "tenant_id": TENANT_A,
            },
        }
    ).encode()


def test_parallel_replays_get_exactly_one_success(live: LiveEndpoint, tenancy: Tenancy) -> None:
    body = enablement_read_body()
    headers = sign(
        "POST", live.public_base + "/callback", {"X-CyberApp-Auth": cyberapp_auth("admin", ADMIN_PASSWORD)}
    )
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def fire() -> None:
        barrier.wait()
        statuses.append(
            requests.post(live.base_url + "/callback", data=body, headers=headers, timeout=10).status_code
        )

    threads = [threading.Thread(target=fire) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [401] * 7


@pytest.mark.parametrize(
    ("login", "headers", "status"),
    [
        ("admin", {"X-CyberApp-Auth": "not base64!"}, 401),
        ("admin", {"X-CyberApp-Auth": cyberapp_auth("admin", "wrong")}, 401),
        ("nobody", {}, 401),
        (None, {}, 401),
        ("admin", {"X-CyberApp-Extra": "not-base64!"}, 400),
        ("admin", {"X-CyberApp-Extra": "W10="}, 400),  # base64 of [] (not an object)
    ],
)
def test_end_user_header_failures(
    live: LiveEndpoint, tenancy: Tenancy, login: str | None, headers: dict[str, str], status: int
) -> None:
    before = snapshot()
    response = live.callback("a.p.enablement.reset.v1.0", login=login, extra_headers=headers)
    assert_envelope(response, status)
    if status == 401:
        assert response.json()["err_message"] == "Authentication failed."
    assert snapshot() == before


def test_forwarding_headers_from_untrusted_peers_are_ignored(
    live: LiveEndpoint, tenancy: Tenancy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="endpoint.access")
    spoof = {
        "X-Forwarded-For": "203.0.113.9",
        "X-Real-Ip": "203.0.113.9",
        "X-Forwarded-Proto": "http",
        "X-Scheme": "http",
        "X-Forwarded-Host": "attacker.example.com",
        "Host": "attacker.example.com",
    }
    response = live.callback("a.p.enablement.read.v1.0", extra_headers=spoof)
    assert response.status_code == 200  # the signed URL comes from configuration, not from these headers
    lines = access_lines(caplog)
    assert lines and lines[-1].fields["client"] == "127.0.0.1"  # type: ignore[attr-defined]


def test_forwarding_header_from_a_trusted_proxy_sets_the_client(
    tenancy: Tenancy, db_settings: DatabaseSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="endpoint.access")
    settings = make_settings(database=db_settings, endpoint={"trusted_proxies": ("127.0.0.0/8",)})
    with live_endpoint(settings) as live:
        live.callback("a.p.enablement.read.v1.0", extra_headers={"X-Forwarded-For": "198.51.100.7"})
    lines = access_lines(caplog)
    assert lines and lines[-1].fields["client"] == "198.51.100.7"  # type: ignore[attr-defined]


def test_logs_never_carry_secrets(
    live: LiveEndpoint, tenancy: Tenancy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for capped in ("oauthlib", "peewee"):  # what configure_logging enforces in the service
        caplog.set_level(logging.INFO, logger=capped)
    auth_value = cyberapp_auth("admin", ADMIN_PASSWORD)
    live.callback("a.p.enablement.read.v1.0")
    live.callback("a.p.enablement.read.v1.0", password="wrong-password-123")
    reset = live.callback(
        "vendor.app.reset_password.v1.0", {"id": tenancy.customer_users[0].id}, tenant_id=TENANT_A
    )
    new_password = reset.json()["payload"]["password"]
    encoded_signature = reset.request.headers["Authorization"].split('oauth_signature="')[1].split('"')[0]
    text = "\n".join(r.getMessage() + " " + str(getattr(r, "fields", "")) for r in caplog.records)
    assert "request" in text  # the access log was captured at all
    for secret in (
        ADMIN_PASSWORD,
        "wrong-password-123",
        auth_value,
        CONSUMER_SECRET,
        new_password,
        encoded_signature,
        unquote(encoded_signature),
    ):
        assert secret not in text


def test_unexpected_errors_are_500_with_a_generic_envelope(
    live: LiveEndpoint, tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from endpoint.callbacks.dispatch import CallbackDispatcher

    async def boom(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals: SELECT * FROM user")

    monkeypatch.setattr(CallbackDispatcher, "dispatch", boom)
    caplog.set_level(logging.ERROR)
    response = live.callback("a.p.enablement.read.v1.0")
    body = assert_envelope(response, 500)
    assert body["err_message"] == "Internal error." and "SELECT" not in response.text
    assert any(response.headers["X-Correlation-Id"] in r.getMessage() for r in caplog.records)


def test_health_endpoint(live: LiveEndpoint, tenancy: Tenancy) -> None:
    response = requests.get(live.base_url + "/healthz", timeout=5)
    assert response.status_code == 200 and response.json()["database"] == "ok"


def test_smuggling_framing_is_rejected(live: LiveEndpoint, tenancy: Tenancy) -> None:
    host, port = live.base_url.removeprefix("http://").split(":")
    for framing in (
        b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        b"Content-Length: 1, 2\r\n",
        b"Content-Length: abc\r\n",
    ):
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(
                b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + framing
                + b"\r\n{}"
            )
            reply = conn.recv(1024)
        assert reply.startswith(b"HTTP/1.1 4") or reply == b""


# -- the request path: what is decided on the headers, and no global lockout ------------------------
def head_only(live: LiveEndpoint, headers: dict[str, str], length: int = 1024 * 1024) -> bytes:
    """Send a request head announcing ``length`` body bytes, send none, and return the reply head."""
    host, port = live.base_url.removeprefix("http://").split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(f"POST /callback HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {length}\r\n\r\n".encode())
        reply = b""
        while b"\r\n\r\n" not in reply and (chunk := conn.recv(4096)):
            reply += chunk
    return reply


@pytest.mark.parametrize(
    "authorization",
    ["OAuth garbage", None, 'OAuth oauth_consumer_key="unknown-key-0000"', "Bearer abc.def.ghi"],
)
def test_an_unverified_request_is_answered_before_its_body(
    live: LiveEndpoint, tenancy: Tenancy, authorization: str | None
) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    started = time.monotonic()
    reply = head_only(live, headers)  # the 1 MiB body never comes: the answer must not wait for it
    assert reply.split(b"\r\n")[0] in (b"HTTP/1.1 400 Bad Request", b"HTTP/1.1 401 Unauthorized")
    assert b"Connection: close" in reply and time.monotonic() - started < 3


def test_a_replay_is_answered_before_its_body(live: LiveEndpoint, tenancy: Tenancy) -> None:
    headers = sign("POST", live.public_base + "/callback")
    body = json.dumps({"x": 1}).encode()
    assert (
        requests.post(live.base_url + "/callback", data=body, headers=headers, timeout=5).status_code == 400
    )
    assert head_only(live, headers).startswith(b"HTTP/1.1 401")


@pytest.mark.parametrize("order", ["valid-last", "valid-first"])
def test_a_second_authorization_header_is_400(live: LiveEndpoint, tenancy: Tenancy, order: str) -> None:
    """Proxies and audit logs read the first, Tornado's dict the last: one request, one credential."""
    auth = cyberapp_auth("admin", ADMIN_PASSWORD)
    signed = sign("POST", live.public_base + "/callback", {"X-CyberApp-Auth": auth})
    values = ["OAuth garbage", signed.pop("Authorization")]
    if order == "valid-first":
        values.reverse()
    head = "".join(f"{k}: {v}\r\n" for k, v in signed.items())
    head += "".join(f"Authorization: {value}\r\n" for value in values)
    body = enablement_read_body()
    head += f"Content-Length: {len(body)}\r\n"
    host, port = live.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(
            f"POST /callback HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode()
        )
        conn.sendall(body)
        assert conn.recv(4096).startswith(b"HTTP/1.1 400")


@pytest.mark.parametrize("name", ["X-CyberApp-Auth", "Content-Type"])
def test_other_repeated_singleton_headers_are_400(live: LiveEndpoint, tenancy: Tenancy, name: str) -> None:
    auth = cyberapp_auth("admin", ADMIN_PASSWORD)
    value = {"X-CyberApp-Auth": auth, "Content-Type": "application/json"}[name]
    signed = sign("POST", live.public_base + "/callback", {"X-CyberApp-Auth": auth})
    head = "".join(f"{k}: {v}\r\n" for k, v in signed.items())
    host, port = live.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(
            f"POST /callback HTTP/1.1\r\nHost: x\r\n{head}{name}: {value}\r\n"
            "Content-Length: 2\r\n\r\n{}".encode()
        )
        assert conn.recv(4096).startswith(b"HTTP/1.1 400")


@pytest.mark.parametrize("nonce", ["q+Z3x/w9Lk0AbC1dEf2GhI3jK4lM5nO6pQ7rS8tU9vA=", "abc123", "a"])
def test_rfc_5849_nonces_verify_over_http(live: LiveEndpoint, tenancy: Tenancy, nonce: str) -> None:
    """Base64 nonces (dghubble/oauth1, the common Go client) and short ones are valid OAuth 1.0."""
    assert_envelope(live.callback("a.p.enablement.read.v1.0", nonce=nonce), 200)


def test_a_replay_to_another_process_is_refused_by_the_database(
    tenancy: Tenancy, db_settings: DatabaseSettings
) -> None:
    settings = make_settings(database=db_settings)
    headers = sign(
        "POST", PUBLIC_URL + "callback", {"X-CyberApp-Auth": cyberapp_auth("admin", ADMIN_PASSWORD)}
    )
    body = enablement_read_body()
    with live_endpoint(settings) as first, live_endpoint(settings) as second:  # two claim tables
        assert (
            requests.post(first.base_url + "/callback", data=body, headers=headers, timeout=5).status_code
            == 200
        )
        replayed = requests.post(second.base_url + "/callback", data=body, headers=headers, timeout=5)
    assert replayed.status_code == 401


def test_failed_logins_of_many_identities_never_lock_out_another_partner(
    tenancy: Tenancy, db_settings: DatabaseSettings
) -> None:
    """The repro: in production every callback comes from the inbound proxy's one address."""
    settings = make_settings(database=db_settings, auth={"failure_max_delay": 0.01})
    with live_endpoint(settings) as live:
        for i in range(50):
            refused = live.callback(
                "a.p.enablement.read.v1.0", login=f"someone.typing.{i}", password=f"wrong-{i}"
            )
            assert refused.status_code == 401
        assert_envelope(live.callback("a.p.enablement.read.v1.0", login="other"), 200)
        assert_envelope(live.callback("a.p.enablement.read.v1.0"), 200)  # and the first partner


def test_bodies_past_the_process_budget_get_503_before_they_are_read(
    tenancy: Tenancy, db_settings: DatabaseSettings
) -> None:
    settings = make_settings(
        database=db_settings, endpoint={"max_body_size": 64 * 1024, "max_buffered_body": 100 * 1024}
    )
    with live_endpoint(settings) as live:
        host, port = live.base_url.removeprefix("http://").split(":")
        held = []
        try:
            for expected in (b"HTTP/1.1 100", b"HTTP/1.1 503"):  # 64 KiB held, the next 64 KiB refused
                headers = sign("POST", live.public_base + "/callback")
                conn = socket.create_connection((host, int(port)), timeout=5)
                held.append(conn)
                head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                conn.sendall(
                    f"POST /callback HTTP/1.1\r\nHost: x\r\n{head}Expect: 100-continue\r\n"
                    f"Content-Length: {64 * 1024}\r\n\r\n".encode()
                )
                reply = conn.recv(4096)
                assert reply.startswith(expected), reply
            assert b"Retry-After: 1" in reply
        finally:
            for conn in held:
                conn.close()
        time.sleep(0.2)  # the held request's connection closed: its reservation is given back
        assert_envelope(live.callback("a.p.enablement.read.v1.0"), 200)


def test_a_request_refused_before_its_unit_of_work_still_records_its_nonce(
    live: LiveEndpoint, tenancy: Tenancy
) -> None:
    """Refused on the envelope or the end user (no database round yet): the nonce reaches the database
    anyway, so the same signed request cannot be replayed to another process once the refusal's cause
    (a throttle, say) has passed."""
    headers = sign("POST", live.public_base + "/callback", {"X-CyberApp-Auth": "not base64!"})
    refused = requests.post(
        live.base_url + "/callback", data=enablement_read_body(), headers=headers, timeout=5
    )
    assert refused.status_code == 401
    nonce = unquote(headers["Authorization"].split('oauth_nonce="')[1].split('"')[0])
    deadline = time.monotonic() + 2
    while not Nonce.select().where(Nonce.nonce == nonce).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert Nonce.select().where(Nonce.nonce == nonce).exists()


# -- the Acronis gateway's Bearer JWT (endpoint.callback_auth = ["acronis_jwt"]) ----------------------
@pytest.fixture(scope="module")
def gateway_tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("jwks-tls"))


@pytest.fixture
def jwks_server(gateway_tls: Tls) -> Iterator[JwksServer]:
    with JwksServer(gateway_tls.cert_pem, gateway_tls.key_pem) as server:
        yield server


@pytest.fixture
def gateway(
    tenancy: Tenancy, db_settings: DatabaseSettings, jwks_server: JwksServer, gateway_tls: Tls
) -> Iterator[LiveEndpoint]:
    with gateway_endpoint(gateway_settings(db_settings, jwks_server, gateway_tls)) as live:
        yield live


def assert_refused(response: requests.Response) -> None:
    assert_envelope(response, 401)
    assert response.json()["err_message"] == "Authentication failed."


def test_acronis_check_missing_bearer(gateway: LiveEndpoint) -> None:
    assert_refused(bearer_callback(gateway, None))


def test_acronis_check_corrupted_token(gateway: LiveEndpoint) -> None:
    assert_refused(bearer_callback(gateway, corrupt(token())))


def test_acronis_check_token_for_another_cyberapp(gateway: LiveEndpoint) -> None:
    assert_refused(bearer_callback(gateway, token(claims(OTHER_ENDPOINT))))  # valid, but scope = another app
    # ... and the body cannot simply name that other app's endpoint either: it is not one of ours.
    assert_refused(bearer_callback(gateway, token(claims(OTHER_ENDPOINT)), endpoint_id=OTHER_ENDPOINT))
    assert_refused(bearer_callback(gateway, token(claims(scope=[]))))  # a token naming no endpoint at all
    assert RequestLedger.select().count() == 0


@pytest.mark.parametrize(
    "make",
    [
        lambda: token(claims(iss="https://idp.attacker.example")),
        lambda: token(claims(exp=int(time.time()) - 61)),
        lambda: unsigned(),
        lambda: hs256_with_public_key(),
    ],
    ids=["wrong-issuer", "expired-beyond-leeway", "alg-none", "hs256-public-key"],
)
def test_broken_tokens_are_401_before_the_body_is_read(gateway: LiveEndpoint, make: Any) -> None:
    response = bearer_callback(gateway, make())
    assert_refused(response)
    assert response.headers.get("Connection") == "close"  # answered on the headers, body never read


def test_a_token_expired_within_the_leeway_is_accepted(gateway: LiveEndpoint, tenancy: Tenancy) -> None:
    response = bearer_callback(gateway, token(claims(exp=int(time.time()) - 20)))
    assert assert_envelope(response, 200)["payload"] == {"vendor_tenant_id": tenancy.partner.id}


def test_an_unknown_kid_refetches_then_stays_401(
    tenancy: Tenancy,
    db_settings: DatabaseSettings,
    jwks_server: JwksServer,
    gateway_tls: Tls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("endpoint.auth.jwks.MIN_REFETCH_INTERVAL", 1.0)  # a second here, a minute in service
    with gateway_endpoint(gateway_settings(db_settings, jwks_server, gateway_tls)) as live:
        time.sleep(1.0)  # the start-up fetch is now "a minute" old
        hits = jwks_server.hits
        jwks_server.fetched.clear()
        assert_refused(bearer_callback(live, token(index=3)))  # key 3 is published nowhere
        assert jwks_server.wait_fetch() and jwks_server.hits == hits + 1  # the refetch it asked for
        assert_refused(bearer_callback(live, token(index=3)))  # still unknown: 401, and no second fetch
        assert_envelope(bearer_callback(live, token(index=0)), 200)
    assert jwks_server.hits == hits + 1


def test_a_valid_gateway_callback_end_to_end_with_the_ledger(
    gateway: LiveEndpoint, tenancy: Tenancy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="endpoint.access")
    payload = claims()
    bearer = token(payload)
    request_id = str(uuid.uuid4())
    new = {"login": "jwt.user", "name": "J", "email": "j@example.net"}
    first = bearer_callback(gateway, bearer, "vendor.app.user_write.v1.0", new, request_id=request_id)
    body = assert_envelope(first, 200)
    again = bearer_callback(gateway, bearer, "vendor.app.user_write.v1.0", new, request_id=request_id)
    assert assert_envelope(again, 200) == body  # the same token, the same request: the stored answer
    other = {**new, "login": "other.user"}
    assert_envelope(
        bearer_callback(gateway, bearer, "vendor.app.user_write.v1.0", other, request_id=request_id), 409
    )
    assert User.select().where(User.login == "jwt.user").count() == 1
    assert [row.principal for row in RequestLedger.select()] == [ENDPOINT_ID]  # keyed on the endpoint id
    lines = access_lines(caplog, 3)
    fields = [line.fields for line in lines if line.fields["path"] == "/callback"][0]  # type: ignore[attr-defined]
    assert fields["principal"] == ENDPOINT_ID and fields["jti"] == payload["jti"]
    assert fields["aud"] == "acronis.cloud" and fields["status"] == 200
    logged = "\n".join(r.getMessage() + " " + str(getattr(r, "fields", "")) for r in caplog.records)
    assert bearer not in logged and bearer.split(".")[2] not in logged


def test_the_v1_1_endpoint_form_is_served_too(gateway: LiveEndpoint) -> None:
    response = bearer_callback(gateway, token(claims(V11_ENDPOINT)), endpoint_id=V11_ENDPOINT)
    assert_envelope(response, 200)
    assert_refused(bearer_callback(gateway, token(claims(V11_ENDPOINT))))  # token for v1.1, body names v1.0


def test_an_oauth_request_while_only_acronis_jwt_is_enabled_is_401(gateway: LiveEndpoint) -> None:
    assert_refused(gateway.callback("a.p.enablement.read.v1.0"))


def test_a_bearer_request_while_only_oauth1_is_enabled_is_401(live: LiveEndpoint) -> None:
    assert_refused(bearer_callback(live, token()))
    assert_envelope(live.callback("a.p.enablement.read.v1.0"), 200)


def test_with_both_schemes_each_request_uses_its_own(
    tenancy: Tenancy, db_settings: DatabaseSettings, jwks_server: JwksServer, gateway_tls: Tls
) -> None:
    settings = gateway_settings(db_settings, jwks_server, gateway_tls, ("oauth1", "acronis_jwt"))
    with gateway_endpoint(settings) as live:
        assert_envelope(live.callback("a.p.enablement.read.v1.0"), 200)
        assert_envelope(bearer_callback(live, token()), 200)
        assert_refused(bearer_callback(live, corrupt(token())))  # no fallback to OAuth
        assert_refused(live.callback("a.p.enablement.read.v1.0", secret="wrong-" + "b" * 40))
        # APS routes stay OAuth-only: a valid gateway token is no credential there.
        bearer = {"Authorization": "Bearer " + token()}
        aps = requests.get(live.base_url + "/app/" + str(uuid.uuid4()), headers=bearer, timeout=5)
        assert aps.status_code == 401


# -- mirrored enablement over HTTP ------------------------------------------------------------------------
MIRROR_P = "aaaaaaaa-0000-4000-8000-0000000000aa"
MIRROR_C = "cccccccc-0000-4000-8000-0000000000cc"
V2 = "cti.a.p.acgw.callback.v2.0~"
ZERO_TIME = "0001-01-01T00:00:00Z"
# The public collection's base response schema, with customer.mirroring.get_state's array payload.
MIRRORING_RESPONSE = {
    "type": "object",
    "required": ["type", "request_id", "response_id"],
    "additionalProperties": False,
    "properties": {
        "type": {
            "type": "string",
            "pattern": "^cti\\.a\\.p\\.acgw\\.response\\.v1\\.1~a\\.p\\..+\\.ok\\.v1\\.0$",
        },
        "request_id": {"type": "string", "format": "uuid"},
        "response_id": {"type": "string", "format": "uuid"},
        "payload": {"type": "object"},
    },
}


def mirroring_envelope(
    name: str,
    payload: dict[str, Any] | None,
    endpoint_id: str = ENDPOINT_ID,
    *,
    request_id: str | None = None,
    created_at: str = ZERO_TIME,
    datacenter: bool = True,
) -> bytes:
    envelope: dict[str, Any] = {
        "type": "cti.a.p.acgw.request.v1.1~" + name,
        "request_id": request_id or str(uuid.uuid4()),
        "created_at": created_at,
        "context": {"callback_id": V2 + name, "endpoint_id": endpoint_id, "tenant_id": MIRROR_P},
    }
    if datacenter:
        envelope["context"]["datacenter_url"] = "https://eu8-cloud.acronis.com"
    if payload is not None:
        envelope["payload"] = payload
    return json.dumps(envelope).encode()


def mirror(
    live: LiveEndpoint,
    name: str,
    payload: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    **envelope: Any,
) -> requests.Response:
    """OAuth-signed, without X-CyberApp-Auth (mirroring carries no end-user credentials)."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    return live.signed("POST", "/callback", body=mirroring_envelope(name, payload, **envelope), headers=sent)


def mirrored(response: requests.Response) -> Any:
    """A 200 answer that passes the response schema; its payload (None when absent)."""
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    array = body["type"].endswith("a.p.customer.mirroring.get_state.ok.v1.0")
    schema = json.loads(json.dumps(MIRRORING_RESPONSE))
    if array:
        schema["properties"]["payload"] = {"type": "array"}
    jsonschema.validate(body, schema, format_checker=jsonschema.FormatChecker())
    return body.get("payload")


@pytest.fixture
def mirroring_live(tenancy: Tenancy, db_settings: DatabaseSettings) -> Iterator[LiveEndpoint]:
    settings = make_settings(
        database=db_settings,
        callbacks=CallbacksSettings(mirroring=True, mirrored_partners_parent=tenancy.partner.id),
    )
    with live_endpoint(settings) as endpoint:
        yield endpoint


def test_the_mirroring_checklist_over_http(mirroring_live: LiveEndpoint, tenancy: Tenancy) -> None:
    """Enable the partner, enable a customer, disable it, disable the partner: no X-CyberApp-Auth at all,
    and every answer passes the response schema (get_state's payload being the one array)."""
    live = mirroring_live
    assert mirrored(mirror(live, "a.p.partner.mirroring.get_state.v1.0", {})) == {"state": "DISABLED"}
    request_id = str(uuid.uuid4())
    sent = mirror(
        live,
        "a.p.partner.mirroring.enable.v1.0",
        {"acronis_tenant_id": MIRROR_P, "acronis_tenant_name": "R", "settings": {"region": "eu"}},
        request_id=request_id,
    )
    enabled = mirrored(sent)
    assert sent.json()["request_id"] == request_id
    assert enabled["state"] == "ENABLED" and enabled["acronis_tenant_id"] == MIRROR_P
    assert mirrored(mirror(live, "a.p.partner.mirroring.get_state.v1.0")) == {
        "state": "ENABLED",
        "settings": {"region": "eu"},
    }
    assert mirrored(mirror(live, "a.p.customer.mirroring.get_state.v1.0")) == []
    customer = {"acronis_tenant_id": MIRROR_C, "acronis_tenant_name": "Shop"}
    state = {"partner_tenant_id": MIRROR_P, "partner_tenant_name": "R"}
    on = mirror(live, "a.p.customer.mirroring.set_state.v1.0", {**state, "enabled": [customer]})
    assert mirrored(on) is None
    listed = mirrored(mirror(live, "a.p.customer.mirroring.get_state.v1.0"))
    assert [(c["acronis_tenant_id"], c["settings"]) for c in listed] == [(MIRROR_C, {})]
    disabled = {**state, "disabled": [{"acronis_tenant_id": MIRROR_C}]}
    assert mirrored(mirror(live, "a.p.customer.mirroring.set_state.v1.0", disabled)) is None
    assert mirrored(mirror(live, "a.p.customer.mirroring.get_state.v1.0")) == []
    assert mirrored(mirror(live, "a.p.partner.mirroring.reset.v1.0")) is None
    assert mirrored(mirror(live, "a.p.partner.mirroring.get_state.v1.0")) == {"state": "DISABLED"}
    mp = Organization.get_by_id(enabled["vendor_tenant_id"])
    assert mp.parent_id == tenancy.partner.id and not mp.active  # kept, disabled


def test_a_mirroring_retry_answers_the_stored_response(mirroring_live: LiveEndpoint) -> None:
    request_id = str(uuid.uuid4())
    enable = {"acronis_tenant_id": MIRROR_P, "acronis_tenant_name": "R"}
    first = mirror(mirroring_live, "a.p.partner.mirroring.enable.v1.0", enable, request_id=request_id)
    again = mirror(mirroring_live, "a.p.partner.mirroring.enable.v1.0", enable, request_id=request_id)
    assert mirrored(again) == mirrored(first) and again.json() == first.json()  # response_id included
    row = RequestLedger.get()
    assert (row.organization_id, row.request_id) == (MIRROR_P, request_id)  # keyed by P, not an org
    other = mirror(mirroring_live, "a.p.partner.mirroring.reset.v1.0", request_id=request_id)
    assert "already used" in assert_envelope(other, 409)["err_message"]


def test_mirroring_refusals_are_error_envelopes_and_change_nothing(
    mirroring_live: LiveEndpoint, tenancy: Tenancy
) -> None:
    live, before = mirroring_live, snapshot()
    state = {"partner_tenant_id": MIRROR_P, "partner_tenant_name": "R", "enabled": []}
    not_enabled = assert_envelope(mirror(live, "a.p.customer.mirroring.set_state.v1.0", state), 409)
    assert not_enabled["err_message"] == "The partner is not enabled."
    assert_envelope(mirror(live, "a.p.customer.mirroring.get_state.v1.0"), 409)
    other = {"acronis_tenant_id": TENANT_A, "acronis_tenant_name": "R"}
    assert_envelope(mirror(live, "a.p.partner.mirroring.enable.v1.0", other), 403)  # not context.tenant_id
    enable = {"acronis_tenant_id": MIRROR_P, "acronis_tenant_name": "R"}
    no_dc = assert_envelope(mirror(live, "a.p.partner.mirroring.enable.v1.0", enable, datacenter=False), 400)
    assert "context.datacenter_url is required" in no_dc["err_message"]
    bad = {**enable, "settings": {"password": "x" * 2000}}
    message = assert_envelope(mirror(live, "a.p.partner.mirroring.enable.v1.0", bad), 400)["err_message"]
    assert "payload.settings must be a flat object" in message and "password" not in message
    assert snapshot() == before


def test_a_disabled_mirrored_customer_refuses_custom_callbacks_over_http(
    mirroring_live: LiveEndpoint,
) -> None:
    live = mirroring_live
    mirrored(
        mirror(
            live,
            "a.p.partner.mirroring.enable.v1.0",
            {"acronis_tenant_id": MIRROR_P, "acronis_tenant_name": "R"},
        )
    )
    state = {"partner_tenant_id": MIRROR_P, "partner_tenant_name": "R"}
    customer = {"acronis_tenant_id": MIRROR_C, "acronis_tenant_name": "Shop"}
    mirrored(mirror(live, "a.p.customer.mirroring.set_state.v1.0", {**state, "enabled": [customer]}))
    # The parent's admin reaches customers below it (with credentials, as every custom callback needs).
    assert_envelope(live.callback("vendor.app.users_read.v1.0", tenant_id=MIRROR_C), 200)
    off = {**state, "disabled": [{"acronis_tenant_id": MIRROR_C}]}
    mirrored(mirror(live, "a.p.customer.mirroring.set_state.v1.0", off))
    assert_envelope(live.callback("vendor.app.users_read.v1.0", tenant_id=MIRROR_C), 403)


def test_mirroring_ignores_x_cyberapp_auth_but_still_checks_the_extra_header(
    mirroring_live: LiveEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="endpoint.access")
    wrong = {"X-CyberApp-Auth": cyberapp_auth("nobody", "wrong-password")}
    mirrored(mirror(mirroring_live, "a.p.partner.mirroring.get_state.v1.0", headers=wrong))  # not evaluated
    mirrored(
        mirror(mirroring_live, "a.p.partner.mirroring.get_state.v1.0", headers={"X-CyberApp-Extra": "e30="})
    )
    bad = {"X-CyberApp-Extra": "not base64!"}
    assert_envelope(mirror(mirroring_live, "a.p.partner.mirroring.get_state.v1.0", headers=bad), 400)
    lines = access_lines(caplog, 3)
    assert [line.fields["status"] for line in lines] == [200, 200, 400]  # type: ignore[attr-defined]
    assert all("user" not in line.fields for line in lines)  # type: ignore[attr-defined]


def test_a_skewed_created_at_is_logged_but_the_zero_time_is_not(
    mirroring_live: LiveEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="endpoint.access")
    mirrored(mirror(mirroring_live, "a.p.partner.mirroring.get_state.v1.0"))  # 0001-01-01: not given
    old = mirror(mirroring_live, "a.p.partner.mirroring.get_state.v1.0", created_at="2001-01-01T00:00:00Z")
    mirrored(old)  # accepted: only the format is checked
    first, second = access_lines(caplog, 2)
    assert "created_skew" not in first.fields  # type: ignore[attr-defined]
    assert second.fields["created_skew"] > 20 * 365 * 86400  # type: ignore[attr-defined]


def test_mirroring_off_the_ids_are_unknown_after_authentication(live: LiveEndpoint) -> None:
    unsigned = requests.post(
        live.base_url + "/callback",
        data=mirroring_envelope("a.p.partner.mirroring.get_state.v1.0", {}),
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert unsigned.status_code == 401  # no enumeration of callback ids before authentication
    anonymous = mirror(live, "a.p.partner.mirroring.get_state.v1.0", {})
    assert anonymous.status_code == 401  # off: an ordinary callback, which needs an end user
    known = mirror(
        live,
        "a.p.partner.mirroring.get_state.v1.0",
        {},
        headers={"X-CyberApp-Auth": cyberapp_auth("admin", ADMIN_PASSWORD)},
    )
    assert "unknown callback_id" in assert_envelope(known, 400)["err_message"]


def test_mirroring_through_the_gateway_with_the_v1_1_endpoint_form(
    tenancy: Tenancy, db_settings: DatabaseSettings, jwks_server: JwksServer, gateway_tls: Tls
) -> None:
    settings = dataclasses.replace(
        gateway_settings(db_settings, jwks_server, gateway_tls),
        callbacks=CallbacksSettings(mirroring=True, mirrored_partners_parent=tenancy.partner.id),
    )
    with gateway_endpoint(settings) as live:
        body = mirroring_envelope(
            "a.p.partner.mirroring.enable.v1.0",
            {"acronis_tenant_id": MIRROR_P, "acronis_tenant_name": "R"},
            endpoint_id=V11_ENDPOINT,
        )
        headers = {"Content-Type": "application/json", "X-CyberApp-Extra": "e30="}
        good = token(claims(V11_ENDPOINT))
        sent = requests.post(
            live.base_url + "/callback",
            data=body,
            headers={**headers, "Authorization": f"Bearer {good}"},
            timeout=10,
        )
        assert sent.status_code == 200, sent.text
        foreign = token(claims("cti.a.p.acgw.endpoint.v1.1~other.app.endpoint.v1.1"))
        refused = requests.post(
            live.base_url + "/callback",
            data=body,
            headers={**headers, "Authorization": f"Bearer {foreign}"},
            timeout=10,
        )
        assert refused.status_code == 401  # a token for another CyberApp
