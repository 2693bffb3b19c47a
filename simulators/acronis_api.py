"""Acronis API simulator: token, alerts, workloads and JWKS endpoints plus a /_sim control API (Tornado).

Run: ``python -m simulators.acronis_api --port 0 [--tls-cert C --tls-key K] [--record PATH] [--keys-dir D]``;
it prints ``{"listening": "<base url>"}`` once bound. Control API (JSON):

- ``POST /_sim/faults`` with
  ``{"faults": [{"endpoint": "alerts", "status": 429, "retry_after": "1", "count": 2}]}``
  (``endpoint`` token|alerts|workloads|jwks|*; ``match`` limits a fault to bodies containing a text; ``count``
  -1 = forever; ``status`` 0 with ``delay`` only delays the real answer); ``DELETE /_sim/faults`` clears them
  (``?endpoint=jwks`` only that endpoint's).
- ``/_sim/jwks``: the identity provider's keys (status, rotate, withhold, publish): simulators.acronis_jwks.
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
from pathlib import Path

import tornado.httpserver
import tornado.netutil
import tornado.web

from simulators.acronis_http import BaseHandler
from simulators.acronis_jwks import jwks_routes
from simulators.acronis_state import SimulatorState, alert_errors, workload_errors
from simulators.keyring import KeyRing

log = logging.getLogger(__name__)

DEFAULT_CLIENT = ("sim-client", "sim-secret")


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
        self.state.clear_faults(self.get_query_argument("endpoint", None))
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
            *jwks_routes(deps),
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
    parser.add_argument(
        "--keys-dir", type=Path, help="keep the JWKS signing keys here (0600 files; the gateway signs too)"
    )
    parser.add_argument("--max-items", type=int, default=1000, help="largest workloads batch accepted")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    logging.basicConfig(level=logging.WARNING)
    state = SimulatorState(parse_clients(args.client, os.environ), args.token_ttl, args.record)
    if args.keys_dir:
        state.keyring = KeyRing.open(args.keys_dir)
    asyncio.run(serve(args, state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
