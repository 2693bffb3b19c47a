"""The lean exchange over real HTTP: answers on the headers, error mapping, headers, budget, in-flight."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import tornado.web
from tornado.httputil import HTTPHeaders, RequestStartLine

from endpoint.auth.identity import VerifiedConsumer
from endpoint.auth.oauth import InboundRequest
from endpoint.auth.stages import Stages
from endpoint.errors import AuthenticationFailed, Conflict, ServiceError, TooManyRequests, Unavailable
from endpoint.runtime import InFlight
from endpoint.web.exchange import Exchange, http_date
from endpoint.web.limits import BodyBudget
from endpoint.web.requestlog import log_request
from endpoint.web.routing import HotPaths, Route
from tests.endpoint.web.test_base import access_record, serve_app
from tests.support.builders import make_settings

MAX_BODY = 4096
RAISES: dict[str, BaseException] = {
    "conflict": Conflict("Login taken.", reason="unique login"),
    "throttled": TooManyRequests(reason="throttled", retry_after=2.6),
    "down": Unavailable("Database db-7.internal is down.", reason="pool exhausted", retry_after=1),
    "boom": RuntimeError("secret internals: SELECT * FROM user"),
}


class HeaderStage:
    """A transport stage keyed on a header: ``Authorization: Test good`` verifies, anything else is 401."""

    scheme = "test"

    def verify(self, request: InboundRequest) -> VerifiedConsumer:
        if request.headers.get("Authorization") != "Test good":
            raise AuthenticationFailed(reason="test: bad credential")
        return VerifiedConsumer(key="test-key", secret_id=1)

    def check_body(self, consumer: VerifiedConsumer, body: bytes, content_type: str) -> None:
        if body == b"tampered":
            raise AuthenticationFailed(reason="test: body does not match")


async def later_conflict() -> None:
    await asyncio.sleep(0.01)
    raise Conflict("Decided later.", reason="after a suspension")


class EchoExchange(Exchange):
    route_label = "echo"

    async def handle(self, body: bytes) -> None:
        self.check_body(body)
        if body == b"sleep":  # suspends on a timer: continues in a Task
            await asyncio.sleep(0.01)
        elif body == b"yield":  # bare yields: one loop turn each
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        elif body == b"later":  # an error raised after the first suspension
            await asyncio.ensure_future(later_conflict())
        error = RAISES.get(body.decode(errors="replace"))
        if error is not None:
            raise error
        self.respond(200, b'{"received": %d}' % len(body))

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"status": status, "error": message}


@pytest.fixture(scope="module")
def runtime() -> SimpleNamespace:
    return SimpleNamespace(
        settings=make_settings(endpoint={"max_body_size": MAX_BODY}),
        inflight=InFlight(),
        bodies=BodyBudget(3 * MAX_BODY),
        metrics=None,
    )


class Other(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write({"routed": "application"})


@pytest.fixture(scope="module")
def base_url(runtime: SimpleNamespace) -> Iterator[str]:
    """The route behind HotPaths, as the server runs /callback (the application here does not know it)."""
    route = Route(runtime, Stages(transport=(HeaderStage(),)), EchoExchange)  # type: ignore[arg-type]
    app = tornado.web.Application([(r"/other", Other)], log_function=log_request)
    with serve_app(HotPaths(app, {"/echo": route})) as url:  # type: ignore[arg-type]
        yield url


def test_hot_paths_take_their_exact_path_and_leave_the_rest_to_the_application(base_url: str) -> None:
    headers = {"Authorization": "Test good"}
    assert requests.post(f"{base_url}/echo?x=1", data=b"abc", headers=headers, timeout=5).json() == {
        "received": 3
    }
    assert requests.get(f"{base_url}/other", timeout=5).json() == {"routed": "application"}
    assert requests.get(f"{base_url}/echo/more", timeout=5).status_code == 404  # not the exact path


def post(base_url: str, body: bytes, **headers: str) -> requests.Response:
    headers.setdefault("Authorization", "Test good")
    return requests.post(f"{base_url}/echo", data=body, headers=headers, timeout=5)


def settle(runtime: SimpleNamespace) -> None:
    """The access line and the release come right after the answer's bytes: wait for them."""
    deadline = time.monotonic() + 2
    while (len(runtime.inflight) or runtime.bodies.reserved) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_verified_request_is_answered_with_the_route_headers(
    base_url: str, runtime: SimpleNamespace
) -> None:
    response = post(base_url, b"hello", **{"X-Request-Id": "req-42"})
    assert response.status_code == 200 and response.json() == {"received": 5}
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Correlation-Id"] == "req-42"  # the caller's id, echoed
    assert response.headers["Date"].endswith(" GMT") and "Server" not in response.headers
    assert "close" not in response.headers.get("Connection", "")  # keep-alive after a verified request
    settle(runtime)
    assert len(runtime.inflight) == 0 and runtime.bodies.reserved == 0


def test_keep_alive_carries_several_exchanges_on_one_connection(base_url: str) -> None:
    with requests.Session() as session:
        for body in (b"a", b"bb", b"ccc"):
            reply = session.post(f"{base_url}/echo", data=body, headers={"Authorization": "Test good"})
            assert reply.json() == {"received": len(body)}


@pytest.mark.parametrize(
    ("body", "status", "message", "retry_after"),
    [
        (b"conflict", 409, "Login taken.", None),
        (b"throttled", 429, "Too many requests.", "3"),
        (b"down", 503, "Service unavailable.", "1"),  # from 500 on, never the error's own text
        (b"boom", 500, "Internal error.", None),
        (b"tampered", 401, "Authentication failed.", None),
    ],
)
def test_refusals_in_handle_map_like_every_route(
    base_url: str,
    body: bytes,
    status: int,
    message: str,
    retry_after: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    response = post(base_url, body)
    assert (response.status_code, response.json()) == (status, {"status": status, "error": message})
    assert response.headers.get("Retry-After") == retry_after
    record = access_record(caplog, response)
    assert record.fields["status"] == status  # type: ignore[attr-defined]
    error = RAISES.get(body.decode())
    if isinstance(error, ServiceError):
        assert record.fields["reason"] == error.reason  # type: ignore[attr-defined]
    if body == b"boom":  # logged once with the correlation id and the traceback; never sent
        [logged] = [r for r in caplog.records if r.name == "endpoint.web.exchange"]
        assert response.headers["X-Correlation-Id"] in logged.getMessage() and logged.exc_info
        assert "SELECT" not in response.text


@pytest.mark.parametrize("body", [b"sleep", b"yield"])
def test_a_handler_that_suspends_is_driven_to_its_answer(base_url: str, body: bytes) -> None:
    with requests.Session() as session:  # and the connection goes on serving afterwards
        for _ in range(3):
            reply = session.post(f"{base_url}/echo", data=body, headers={"Authorization": "Test good"})
            assert reply.json() == {"received": len(body)}


def test_an_error_after_a_suspension_is_answered_like_any_other(base_url: str) -> None:
    response = post(base_url, b"later")
    assert (response.status_code, response.json()) == (409, {"status": 409, "error": "Decided later."})


def test_a_handler_that_never_suspends_answers_within_finish_without_a_task() -> None:
    """The eager start: SQLite's inline units never suspend, so the answer is written during finish()."""
    written: list[int] = []

    class Connection:
        context = SimpleNamespace(remote_ip="127.0.0.1")

        def set_max_body_size(self, size: int) -> None:
            pass

        def write_headers(self, start_line: Any, headers: Any, body: bytes) -> None:
            written.append(start_line.code)

        def finish(self) -> None:
            pass

    runtime = SimpleNamespace(
        settings=make_settings(endpoint={"max_body_size": MAX_BODY}), inflight=InFlight(),
        bodies=BodyBudget(MAX_BODY), metrics=None,
    )  # fmt: skip
    route = Route(runtime, Stages(transport=(HeaderStage(),)), EchoExchange)  # type: ignore[arg-type]
    exchange = route.start_request(None, Connection())  # type: ignore[arg-type]
    exchange.headers_received(
        RequestStartLine("POST", "/echo", "HTTP/1.1"), HTTPHeaders({"Authorization": "Test good"})
    )
    exchange.data_received(b"hello")
    exchange.finish()
    assert written == [200] and exchange._task is None and len(runtime.inflight) == 0  # type: ignore[attr-defined]


def raw(base_url: str, request: bytes, wait: float = 5) -> bytes:
    """Send ``request`` (headers, maybe part of a body) and read until the server closes or answers."""
    host, port = base_url.removeprefix("http://").split(":")
    reply = b""
    with socket.create_connection((host, int(port)), timeout=wait) as conn:
        conn.sendall(request)
        try:
            while chunk := conn.recv(4096):
                reply += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    return reply


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /echo HTTP/1.1\r\nAuthorization: Test good\r\n", b"405"),
        (b"POST /echo HTTP/1.1\r\nAuthorization: Test bad\r\n", b"401"),
        (b"POST /echo HTTP/1.1\r\nAuthorization: Test good\r\nAuthorization: Test good\r\n", b"400"),
        (b"POST /echo HTTP/1.1\r\nAuthorization: Test good\r\nContent-Length: 99999\r\n", b"413"),
    ],
)
def test_a_refusal_on_the_headers_is_answered_before_the_body_and_closes(
    base_url: str, head: bytes, status: bytes, runtime: SimpleNamespace
) -> None:
    if b"Content-Length" not in head:
        head += b"Content-Length: 1000\r\n"
    started = time.monotonic()
    reply = raw(base_url, head + b"Host: x\r\n\r\n" + b"x" * 10)  # 990 body bytes never sent
    assert reply.startswith(b"HTTP/1.1 " + status)
    assert b"\r\nConnection: close\r\n" in reply and time.monotonic() - started < 3
    settle(runtime)
    assert len(runtime.inflight) == 0 and runtime.bodies.reserved == 0


def test_a_client_leaving_mid_body_gives_its_reservation_back(
    base_url: str, runtime: SimpleNamespace
) -> None:
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Test good\r\nContent-Length: 4000\r\n\r\n"
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(head + b"x" * 100)
        deadline = time.monotonic() + 2
        while runtime.bodies.reserved != 4000 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert runtime.bodies.reserved == 4000  # held while the body is being read
    settle(runtime)
    assert runtime.bodies.reserved == 0 and len(runtime.inflight) == 0


def test_a_full_budget_is_503_with_retry_after(base_url: str, runtime: SimpleNamespace) -> None:
    held = runtime.bodies.reserve(runtime.bodies.limit - 10)
    try:
        response = post(base_url, b"x" * 100)
    finally:
        runtime.bodies.release(held)
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.headers["Connection"] == "close"


def test_the_date_header_is_formatted_once_a_second() -> None:
    first = http_date()
    assert first == http_date() and first.endswith(" GMT")
