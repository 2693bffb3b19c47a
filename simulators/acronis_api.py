"""Acronis API simulator: token, alerts and workloads endpoints plus a /_sim control API (Tornado).

Run: ``python -m simulators.acronis_api --port 0 [--tls-cert C --tls-key K] [--record PATH]``; it prints
``{"listening": "<base url>"}`` once bound. Control API (JSON):

- ``POST /_sim/faults`` with
  ``{"faults": [{"endpoint": "alerts", "status": 429, "retry_after": "1", "count": 2}]}``
  (``endpoint`` token|alerts|workloads|*; ``match`` limits a fault to bodies containing a text; ``count`` -1 =
  forever; ``status`` 0 with ``delay`` only delays the real answer); ``DELETE /_sim/faults`` clears them.
- ``GET /_sim/received``: tokens issued, accepted alerts (with ids) and workloads, every request with status.
- ``POST /_sim/expire-tokens``: every issued token now answers 401. ``POST /_sim/reset``: forget everything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
import sys
from collections.abc import Sequence
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web

from simulators.acronis_state import SimulatorState, alert_errors, workload_errors

log = logging.getLogger(__name__)

DEFAULT_CLIENT = ("sim-client", "sim-secret")


class BaseHandler(tornado.web.RequestHandler):
    endpoint = "*"

    def initialize(self, state: SimulatorState, max_items: int = 1000) -> None:
        self.state = state
        self.max_items = max_items

    def check_xsrf_cookie(self) -> None:
        """Server-to-server API: no XSRF tokens."""

    def reply(self, status: int, answer: dict[str, Any] | None = None, **extra: Any) -> None:
        self.state.log_request(
            {"endpoint": self.endpoint, "method": self.request.method, "status": status, **extra}
        )
        self.set_status(status)
        if answer is not None:
            self.write(answer)

    async def faulted(self) -> bool:
        """Apply an injected fault; True when it already answered the request."""
        fault = self.state.take_fault(self.endpoint, self.request.body)
        if fault is None:
            return False
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.status == 0:
            return False
        if fault.retry_after is not None:
            self.set_header("Retry-After", fault.retry_after)
        self.reply(fault.status, None, fault=True)
        self.write(fault.body or json.dumps({"error": f"injected {fault.status}"}))
        return True

    def json_body(self) -> Any:
        try:
            return json.loads(self.request.body)
        except ValueError:
            return None

    def bearer(self) -> str | None:
        client = self.state.bearer_client(self.request.headers.get("Authorization", ""))
        if client is None:
            self.set_header("WWW-Authenticate", 'Bearer error="invalid_token"')
            self.reply(401, {"error": "invalid or expired token"})
        return client


class TokenHandler(BaseHandler):
    endpoint = "token"

    async def post(self) -> None:
        if await self.faulted():
            return
        status, body = self.state.issue_token(
            self.request.headers.get("Authorization", ""), self.request.body_arguments
        )
        self.set_header("Cache-Control", "no-store")
        self.reply(status, body)


class AlertsHandler(BaseHandler):
    endpoint = "alerts"

    async def post(self) -> None:
        if await self.faulted() or self.bearer() is None:
            return
        body = self.json_body()
        errors = alert_errors(body)
        if errors:
            self.reply(400, {"error": "invalid alert", "details": errors}, body=body)
            return
        alert_id = self.state.accept_alert(body)
        self.reply(200, {"id": alert_id}, body=body)


class WorkloadsHandler(BaseHandler):
    endpoint = "workloads"

    async def post(self) -> None:
        if await self.faulted():
            return
        client = self.bearer()
        if client is None:
            return
        body = self.json_body()
        errors = workload_errors(body, client, self.max_items)
        if errors:
            self.reply(400, {"error": "invalid workloads", "details": errors}, body=body)
            return
        self.state.accept_workloads(body["items"])
        self.reply(204, None, body=body)


class FaultsHandler(BaseHandler):
    def post(self) -> None:
        body = self.json_body()
        try:
            if not isinstance(body, dict) or not isinstance(body.get("faults"), list):
                raise ValueError('expected {"faults": [...]}')
            self.state.add_faults(body["faults"])
        except (TypeError, ValueError) as e:
            raise tornado.web.HTTPError(400, reason=str(e)[:200]) from e
        self.write({"faults": len(self.state.faults)})

    def delete(self) -> None:
        with self.state.lock:
            self.state.faults.clear()
        self.set_status(204)


class ReceivedHandler(BaseHandler):
    def get(self) -> None:
        self.write(self.state.snapshot())


class ExpireHandler(BaseHandler):
    def post(self) -> None:
        self.write({"expired": self.state.expire_tokens()})


class ResetHandler(BaseHandler):
    def post(self) -> None:
        self.state.reset()
        self.set_status(204)


def make_app(state: SimulatorState, *, max_items: int = 1000) -> tornado.web.Application:
    deps = dict(state=state, max_items=max_items)
    return tornado.web.Application(
        [
            (r"/bc/idp/token", TokenHandler, deps),
            (r"/api/2/idp/token", TokenHandler, deps),
            (r"/api/alert_manager/v1/alerts", AlertsHandler, deps),
            (r"/api/workload_management/v5/workloads", WorkloadsHandler, deps),
            (r"/_sim/faults", FaultsHandler, deps),
            (r"/_sim/received", ReceivedHandler, deps),
            (r"/_sim/expire-tokens", ExpireHandler, deps),
            (r"/_sim/reset", ResetHandler, deps),
        ]
    )


def parse_clients(specs: Sequence[str], environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """``ID:SECRET_ENV`` pairs (the secret comes from that variable); the default test client otherwise."""
    clients: dict[str, str] = {}
    for spec in specs:
        client_id, sep, env_name = spec.rpartition(":")
        if not sep or not client_id or env_name not in environ:
            raise SystemExit(f"--client {spec!r}: expected ID:SECRET_ENV with SECRET_ENV set")
        clients[client_id] = environ[env_name]
    return clients or dict([DEFAULT_CLIENT])


async def serve(args: argparse.Namespace, state: SimulatorState) -> None:
    ssl_ctx = None
    if args.tls_cert:
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(args.tls_cert, args.tls_key)
    sockets = tornado.netutil.bind_sockets(args.port, args.host)
    server = tornado.httpserver.HTTPServer(make_app(state, max_items=args.max_items), ssl_options=ssl_ctx)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    scheme = "https" if ssl_ctx else "http"
    print(json.dumps({"listening": f"{scheme}://{args.host}:{port}"}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.acronis_api",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls-cert", help="PEM certificate chain (serve https)")
    parser.add_argument("--tls-key", help="PEM private key for --tls-cert")
    parser.add_argument("--record", help="append one JSON line per request to this file")
    parser.add_argument(
        "--client",
        action="append",
        default=[],
        metavar="ID:SECRET_ENV",
        help="an API client; default: sim-client / sim-secret",
    )
    parser.add_argument("--token-ttl", type=int, default=7200, help="token lifetime in seconds (2 h)")
    parser.add_argument("--max-items", type=int, default=1000, help="largest workloads batch accepted")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    logging.basicConfig(level=logging.WARNING)
    state = SimulatorState(parse_clients(args.client, os.environ), args.token_ttl, args.record)
    asyncio.run(serve(args, state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
