"""The baseline: a bare Tornado app answering every POST with a small JSON object (one process)."""

from __future__ import annotations

import asyncio
import sys

import tornado.web


class JsonHandler(tornado.web.RequestHandler):
    def post(self) -> None:
        self.write({"type": "ok", "items": []})

    def get(self) -> None:
        self.write({"status": "ok"})


async def main(port: int) -> None:
    app = tornado.web.Application([(r"/.*", JsonHandler)], log_function=lambda handler: None)
    app.listen(port, "127.0.0.1")
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
