"""BaseHandler over real HTTP: the domain-error table, error bodies, default headers, limits and logs."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import tornado.httpserver
import tornado.netutil
import tornado.web

from endpoint.callbacks.envelope import MalformedCallback
from endpoint.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    NotFound,
    PayloadError,
    ServiceError,
    TooLarge,
    TooManyRequests,
    Unavailable,
)
from endpoint.runtime import InFlight
from endpoint.web.base import BaseHandler, next_correlation_id, status_for
from endpoint.web.limits import BodyBudget
from endpoint.web.requestlog import log_request
from tests.support.builders import make_settings

MAX_BODY = 2048
ERRORS: dict[str, ServiceError] = {
    "PayloadError": PayloadError("Field x is missing.", reason="schema: x"),
    "AuthenticationFailed": AuthenticationFailed(reason="signature mismatch"),
    "Forbidden": Forbidden("Not your tenant.", reason="org o-1 acting on o-2"),
    "NotFound": NotFound("No such user.", reason="user u-9"),
    "Conflict": Conflict("Login taken.", reason="unique login"),
    "TooLarge": TooLarge(reason="body over the limit"),
    "TooManyRequests": TooManyRequests(reason="throttled", retry_after=7),
    "Unavailable": Unavailable("Database db-7.internal is down.", reason="pool exhausted"),
    "MalformedCallback": MalformedCallback("Unknown callback.", reason="callback id"),
    "ServiceError": ServiceError("Base class internals.", reason="unmapped"),
}
# What the caller sees: the error's own message below 500, the generic text from 500 on.
EXPECTED = {
    "PayloadError": (400, "Field x is missing."),
    "AuthenticationFailed": (401, "Authentication failed."),
    "Forbidden": (403, "Not your tenant."),
    "NotFound": (404, "No such user."),
    "Conflict": (409, "Login taken."),
    "TooLarge": (413, "Request too large."),
    "TooManyRequests": (429, "Too many requests."),
    "Unavailable": (503, "Service unavailable."),
    "MalformedCallback": (400, "Unknown callback."),
    "ServiceError": (500, "Internal error."),
}


class RaisingHandler(BaseHandler):
    def get(self, name: str) -> None:
        raise ERRORS[name]


class ThrottledHandler(BaseHandler):
    def get(self, seconds: str) -> None:
        raise TooManyRequests(retry_after=None if seconds == "none" else float(seconds))


class BoomHandler(BaseHandler):
    async def get(self) -> None:
        raise RuntimeError("secret internals: SELECT * FROM user")


class OkHandler(BaseHandler):
    def get(self) -> None:
        self.log_fields["principal"] = "acme-key"
        self.finish({"ok": True})

    def post(self) -> None:
        self.finish({"received": len(self.take_body())})


@contextmanager
def serve_app(app: tornado.web.Application) -> Iterator[str]:
    """A real HTTPServer for ``app`` on a free loopback port, in a thread joined on exit."""
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    started = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        server = tornado.httpserver.HTTPServer(app)
        server.add_sockets(sockets)
        state["loop"], state["stop"] = asyncio.get_running_loop(), asyncio.Event()
        started.set()
        await state["stop"].wait()
        server.stop()
        await server.close_all_connections()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="test-app", daemon=True)
    thread.start()
    assert started.wait(5)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(5)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    runtime = SimpleNamespace(
        settings=make_settings(endpoint={"max_body_size": MAX_BODY}),
        inflight=InFlight(),
        bodies=BodyBudget(16 * MAX_BODY),
    )
    deps = {"runtime": runtime}
    app = tornado.web.Application(
        [
            (r"/raise/(\w+)", RaisingHandler, deps),
            (r"/throttled/([\w.]+)", ThrottledHandler, deps),
            (r"/boom", BoomHandler, deps),
            (r"/ok", OkHandler, deps),
        ],
        log_function=log_request,
    )
    with serve_app(app) as url:
        yield url


def access_record(caplog: pytest.LogCaptureFixture, response: requests.Response) -> logging.LogRecord:
    """The access line of ``response`` (matched by correlation id: the module-scoped server may still be
    logging an earlier test's request); it is written right after the response is flushed, so wait."""
    correlation = response.headers["X-Correlation-Id"]
    deadline = time.monotonic() + 2
    while True:
        found = [
            r
            for r in caplog.records
            if r.name == "endpoint.access" and r.fields["correlation"] == correlation
        ]  # type: ignore[attr-defined]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, f"expected one access line for {correlation}, got {len(found)}"
            return found[0]
        time.sleep(0.01)


def raw_reply(base_url: str, data: bytes) -> bytes:
    host, port = base_url.removeprefix("http://").split(":")
    reply = b""
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(data)
        try:
            while b"\r\n\r\n" not in reply and (chunk := conn.recv(4096)):
                reply += chunk
        except ConnectionResetError:
            pass
    return reply


# -- the status table ------------------------------------------------------------------------------
def test_status_for_follows_subclasses() -> None:
    class EditConflict(Conflict):
        pass

    assert status_for(EditConflict()) == 409


@pytest.mark.parametrize("name", list(EXPECTED))
def test_errors_over_http(base_url: str, name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="endpoint.access")
    status, message = EXPECTED[name]
    response = requests.get(f"{base_url}/raise/{name}", timeout=5)
    assert response.status_code == status
    assert response.headers["Content-Type"].lower() == "application/json; charset=utf-8"
    assert response.json() == {"code": status, "message": message}
    record = access_record(caplog, response)
    assert record.fields["reason"] == ERRORS[name].reason  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name != "endpoint.access"]


@pytest.mark.parametrize(("seconds", "header"), [("7", "7"), ("2.6", "3"), ("0.2", "1"), ("none", "1")])
def test_429_carries_retry_after(base_url: str, seconds: str, header: str) -> None:
    response = requests.get(f"{base_url}/throttled/{seconds}", timeout=5)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == header


def test_only_429_carries_retry_after(base_url: str) -> None:
    response = requests.get(f"{base_url}/raise/Unavailable", timeout=5)
    assert "Retry-After" not in response.headers


def test_undefined_verb_is_405_with_a_json_body(base_url: str) -> None:
    response = requests.delete(f"{base_url}/ok", timeout=5)
    assert response.status_code == 405
    assert response.json() == {"code": 405, "message": "Method not allowed."}


# -- default headers and correlation ---------------------------------------------------------------
@pytest.mark.parametrize("path", ["/ok", "/raise/NotFound", "/boom"])
def test_default_headers_on_every_response(base_url: str, path: str) -> None:
    response = requests.get(base_url + path, timeout=5)
    assert re.fullmatch(r"[0-9a-f]{16}", response.headers["X-Correlation-Id"])
    assert response.headers["Cache-Control"] == "no-store"
    assert "Server" not in response.headers


def test_correlation_id_is_per_request_and_matches_the_access_log(
    base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="endpoint.access")
    first = requests.get(f"{base_url}/ok", timeout=5)
    second = requests.get(f"{base_url}/raise/Conflict", timeout=5)
    records = [access_record(caplog, first), access_record(caplog, second)]  # one line each, matched by id
    assert first.headers["X-Correlation-Id"] != second.headers["X-Correlation-Id"]
    assert records[0].fields["principal"] == "acme-key"  # type: ignore[attr-defined]


def test_a_forked_worker_marks_its_correlation_ids_with_its_own_pid() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, next_correlation_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert (
        child[6:10] == f"{pid & 0xFFFF:04x}" and next_correlation_id()[6:10] == f"{os.getpid() & 0xFFFF:04x}"
    )


@pytest.mark.parametrize("header", ["X-Request-Id", "X-Correlation-Id"])
def test_an_incoming_request_id_is_honoured_and_echoed(
    base_url: str, caplog: pytest.LogCaptureFixture, header: str
) -> None:
    caplog.set_level(logging.INFO, logger="endpoint.access")
    response = requests.get(f"{base_url}/ok", headers={header: "nginx-7f3a.9:b@edge"}, timeout=5)
    assert response.headers["X-Correlation-Id"] == "nginx-7f3a.9:b@edge"
    access_record(caplog, response)  # the log line carries the same id


@pytest.mark.parametrize(
    "value",
    ["a" * 65, "with space", "tab\tinside", "-leading-dash", "quo'te", "ünicode", ""],
    ids=["too-long", "space", "tab", "leading-dash", "quote", "non-ascii", "empty"],
)
def test_an_unusable_request_id_is_replaced_by_our_own(base_url: str, value: str) -> None:
    response = requests.get(
        f"{base_url}/ok", headers={"X-Request-Id": value.encode().decode("latin-1")}, timeout=5
    )
    assert re.fullmatch(r"[0-9a-f]{16}", response.headers["X-Correlation-Id"])


# -- limits ----------------------------------------------------------------------------------------
def test_body_within_the_limit_is_read(base_url: str) -> None:
    response = requests.post(f"{base_url}/ok", data=b"x" * MAX_BODY, timeout=5)
    assert response.json() == {"received": MAX_BODY}


def test_content_length_over_the_limit_is_413_before_the_body(base_url: str) -> None:
    reply = raw_reply(
        base_url, b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1)
    )
    assert reply.startswith(b"HTTP/1.1 413")


@pytest.mark.parametrize(
    "value",
    [
        b"abc",
        b"-1",
        b"1e3",
        b"0x10",
        b"\xb2",  # latin-1 superscript two: str.isdigit() is True, int() refuses it
    ],
)
def test_non_numeric_content_length_is_4xx(
    base_url: str, value: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    reply = raw_reply(base_url, b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: " + value + b"\r\n\r\n")
    assert re.match(rb"HTTP/1\.1 4\d\d ", reply), reply[:40]
    assert not [r for r in caplog.records if r.name == "endpoint.web.base"]


# -- unexpected errors -----------------------------------------------------------------------------
def test_unexpected_exception_is_500_generic_with_a_logged_correlation(
    base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = requests.get(f"{base_url}/boom", timeout=5)
    assert response.status_code == 500
    assert response.json() == {"code": 500, "message": "Internal error."}
    assert "SELECT" not in response.text and "Traceback" not in response.text
    correlation = response.headers["X-Correlation-Id"]
    [error] = [r for r in caplog.records if r.name == "endpoint.web.base"]
    assert error.levelno == logging.ERROR and correlation in error.getMessage()
    assert error.exc_info and "secret internals" in str(error.exc_info[1])  # the detail stays in the log
    access = access_record(caplog, response)
    assert access.levelno == logging.ERROR and access.fields["correlation"] == correlation  # type: ignore[attr-defined]
