"""Baselines: a bare Tornado app answering every POST with tiny JSON, or with a 50-user users_read body.

    python -m bench.bare_tornado PORT              # {"type": "ok", "items": []}
    python -m bench.bare_tornado PORT --users50    # the endpoint's users_read answer for 50 users
    python -m bench.bare_tornado PORT --processes 2  # two processes on one port: the machine's own scaling

The 50-user body is built and encoded once at start (tornado's json_encode, as the endpoint's finish(dict)),
so the baseline pays for HTTP and the bytes on the wire, not for the application.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import uuid

import tornado.escape
import tornado.httpserver
import tornado.netutil
import tornado.process
import tornado.web

SUCCESS_TYPE = "cti.a.p.acgw.response.v1.0~vendor.app.users_read_success.v1.0"


def users50_body() -> bytes:
    """A realistic users_read success envelope: 50 users, as bench/callback_data.py seeds them."""
    items = [
        {"id": str(uuid.uuid4()), "name": f"User {i:02d}", "email": f"user{i:02d}@example.com"}
        for i in range(50)
    ]
    envelope = {
        "type": SUCCESS_TYPE,
        "request_id": str(uuid.uuid4()),
        "response_id": str(uuid.uuid4()),
        "payload": {"items": items},
    }
    return tornado.escape.json_encode(envelope).encode()


class JsonHandler(tornado.web.RequestHandler):
    def post(self) -> None:
        self.write({"type": "ok", "items": []})

    def get(self) -> None:
        self.write({"status": "ok"})


class Users50Handler(tornado.web.RequestHandler):
    def initialize(self, body: bytes) -> None:
        self.body = body

    def post(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.write(self.body)

    def get(self) -> None:
        self.write({"status": "ok"})


async def main(sockets: list[socket.socket], users50: bool) -> None:
    route = (r"/.*", Users50Handler, {"body": users50_body()}) if users50 else (r"/.*", JsonHandler)
    app = tornado.web.Application([route], log_function=lambda handler: None)
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("port", type=int)
    parser.add_argument("--users50", action="store_true", help="answer with the 50-user users_read body")
    parser.add_argument("--processes", type=int, default=1, help="serving processes on the one port")
    args = parser.parse_args()
    bound = tornado.netutil.bind_sockets(args.port, "127.0.0.1")
    if args.processes > 1:
        tornado.process.fork_processes(args.processes)  # the parent waits and restarts; children serve
    asyncio.run(main(bound, args.users50))
