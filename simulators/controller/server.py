"""A minimal APS controller API (/aps/2/resources, /aps/2/applications) that verifies every call.

``ControllerServer`` runs in threads (in-process, for tests) or in the foreground (``serve`` command). It
rebuilds each request's signed URL from its public base URL (what the connector knows as
APS-Controller-URI), verifies the OAuth 1.0 signature independently (verify.py), records every request,
and can inject faults. ``POST /aps/2/applications`` registers an instance document (APS-Token auth) and,
when an ``on_register`` hook is set, creates the instance on the connector as the real controller does.
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from simulators.background import BackgroundServer
from simulators.controller.scenarios import ACCOUNT_TYPE
from simulators.controller.state import ControllerState, Fault, Received
from simulators.controller.verify import Verifier

RESOURCES = "/aps/2/resources"
APPLICATIONS = "/aps/2/applications"


class ControllerServer(BackgroundServer):
    """The simulated controller: ``start()`` serves in a thread; ``stop()`` closes it."""

    thread_name = "controller-sim"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: tuple[str, str] | None = None,  # (certificate chain, key) PEM paths
        public_base: str | None = None,
        token: str | None = None,
        record_path: str | None = None,
    ) -> None:
        super().__init__(_Server((host, port), _Handler))
        self._context: ssl.SSLContext | None = None
        if tls is not None:
            self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._context.load_cert_chain(*tls)
        self._server.tls = self._context
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{host}:{self._server.server_address[1]}/"
        self.state = ControllerState(Verifier(public_base or self.url), token=token, record_path=record_path)
        self._server.state = self.state

    @property
    def public_base(self) -> str:
        return self.state.verifier.public_base + "/"

    # -- in-process API -------------------------------------------------------------------------
    def trust(self, key: str, secret: str) -> None:
        self.state.verifier.trust(key, secret)

    def put(self, resource_id: str, resource: dict[str, Any]) -> None:
        with self.state.lock:
            self.state.resources[resource_id] = resource

    def resource(self, resource_id: str) -> dict[str, Any] | None:
        with self.state.lock:
            return self.state.resources.get(resource_id)

    def received(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.received)

    def fault(
        self, method: str, path_prefix: str, status: int | None, times: int = 1, delay: float = 0.0
    ) -> None:
        """The next ``times`` matching requests (-1: all, until cleared) get ``status`` after ``delay``."""
        with self.state.lock:
            self.state.faults.append(Fault(method.upper(), path_prefix, status, times, delay))

    def clear_faults(self) -> None:
        with self.state.lock:
            self.state.faults.clear()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    state: ControllerState
    tls: ssl.SSLContext | None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:  # the handshake runs in the request's thread, not the accept loop
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read ``received`` instead
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        path = urlsplit(self.path).path
        fault = self._fault(path)
        if fault is not None:
            time.sleep(fault.delay)
            if fault.status == 0:
                self.close_connection = True
                self.connection.close()
                return
        if path.startswith(APPLICATIONS) and "APS-Token" in self.headers:  # provider staff: a UI token...
            verdict_ok = state.token is not None and self.headers.get("APS-Token") == state.token
            record = self._record(body, verdict_ok, None, "APS-Token" if verdict_ok else "bad APS-Token")
        else:  # ...or a staff OAuth key; everything else is signed with an instance key
            verdict = state.verifier.verify(self.command, self.path, self.headers.get("Authorization"))
            record = self._record(body, verdict.ok, verdict.key, verdict.reason)
        if fault is not None and fault.status:
            return self._reply(record, fault.status, _error(fault.status, "Injected fault."))
        if not record.verified:
            return self._reply(record, 401, _error(401, f"Unauthorized: {record.reason}"))
        if path.startswith(APPLICATIONS):
            instance_id = path[len(APPLICATIONS) :].strip("/")
            if self.command == "PUT" and instance_id:
                return self._new_credentials(record, instance_id, body)
            return self._register(record, body)
        if path.startswith(RESOURCES):
            return self._resources(record, path[len(RESOURCES) :].strip("/"), body)
        self._reply(record, 404, _error(404, "No such API."))

    def _resources(self, record: Received, resource_id: str, body: Any) -> None:
        state = self.server.state
        with state.lock:  # decide under the lock, answer outside it
            status, answer = self._resource_call(resource_id, body)
        if self.command == "GET" and status == 200 and state.account_delay and _is_account(answer):
            time.sleep(state.account_delay)
        self._reply(record, status, answer)

    def _resource_call(self, resource_id: str, body: Any) -> tuple[int, Any]:
        resources = self.server.state.resources
        current = resources.get(resource_id)
        if self.command == "GET":
            if not resource_id:
                return 200, list(resources.values())
            return (200, current) if current is not None else (404, _error(404, "Resource not found."))
        if self.command == "PUT" and resource_id and isinstance(body, dict):
            resources[resource_id] = {**(current or {"aps": {"id": resource_id}}), **body}
            return 200, resources[resource_id]
        if self.command == "DELETE" and resource_id:
            resources.pop(resource_id, None)
            return 204, None
        return 400, _error(400, "Unsupported resource call.")

    def _register(self, record: Received, document: Any) -> None:
        state = self.server.state
        try:  # the instance's key and secret: the controller verifies callbacks with them from now on
            oauth = document["aps"]["auth"]["oauth"]
            key, secret = oauth["key"], oauth["secret"]
        except (KeyError, TypeError):
            return self._reply(record, 400, _error(400, "aps.auth.oauth.key and .secret are required."))
        instance_id = str(uuid.uuid4())
        state.verifier.trust(key, secret)
        if state.on_register is not None:
            status = state.on_register(document, instance_id)
            if status not in (200, 201):
                state.verifier.forget(key)
                return self._reply(
                    record, 502, _error(502, f"The endpoint answered {status} to instance creation.")
                )
        answer = {
            "aps": {"id": instance_id, "type": "http://aps-standard.org/types/core/application/1.0"},
            "app": {"aps": {"id": instance_id}},
        }
        with state.lock:
            state.applications[instance_id] = {"key": key, "endpoint": document["aps"].get("endpoint")}
        self._reply(record, 201, answer)

    def _new_credentials(self, record: Received, instance_id: str, body: Any) -> None:
        """``PUT /aps/2/applications/{id}`` by provider staff: the instance's key gets a new secret (after
        the connector's rotate-key); from now on the controller signs with it and verifies with it."""
        state = self.server.state
        try:
            oauth = body["aps"]["auth"]["oauth"]
            key, secret = oauth["key"], oauth["secret"]
        except (KeyError, TypeError):
            key = secret = None
        if secret is not None:  # the record file never holds the secret
            record.body = {"aps": {"auth": {"oauth": {"key": key, "secret": "[redacted]"}}}}
        with state.lock:
            application = state.applications.get(instance_id)
        if application is None:
            return self._reply(record, 404, _error(404, "No such application instance."))
        if not isinstance(secret, str) or not secret:
            return self._reply(record, 400, _error(400, "aps.auth.oauth.key and .secret are required."))
        if key != application["key"]:
            return self._reply(record, 400, _error(400, "aps.auth.oauth.key is not this instance's key."))
        state.verifier.trust(key, secret)
        self._reply(record, 200, {"aps": {"id": instance_id}, "app": {"aps": {"id": instance_id}}})

    def _fault(self, path: str) -> Fault | None:
        state = self.server.state
        with state.lock:
            for fault in state.faults:
                hit = fault.method in ("*", self.command) and path.startswith(fault.path_prefix)
                if hit and fault.times != 0:
                    if fault.times > 0:
                        fault.times -= 1
                    return fault
        return None

    def _record(self, body: Any, ok: bool, key: str | None, reason: str) -> Received:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("authorization", "aps-token")}
        auth = self.headers.get("Authorization") or ""
        names = (
            part.split("=", 1)[0].strip() for part in auth.removeprefix("OAuth ").split(",") if "=" in part
        )
        headers["Authorization"] = ",".join(sorted(names))  # parameter names only: never the signature
        record = Received(self.command, self.path, headers, body, ok, key, reason)
        with self.server.state.lock:
            self.server.state.received.append(record)
        return record

    def _reply(self, record: Received, status: int, body: Any) -> None:
        record.status = status
        path = self.server.state.record_path
        if path:
            with self.server.state.lock, open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({**asdict(record), "ts": time.time()}) + "\n")
        data = b"" if body is None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _is_account(resource: Any) -> bool:
    return isinstance(resource, dict) and resource.get("aps", {}).get("type") == ACCOUNT_TYPE


_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    404: "NotFound",
    502: "BadGateway",
    503: "ServiceUnavailable",
}


def _error(status: int, message: str) -> dict[str, Any]:
    return {"code": status, "error": _NAMES.get(status, "Error"), "message": message}
