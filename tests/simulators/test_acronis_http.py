"""The simulator's handler base: injected faults answer or delay, and every answer is recorded."""

from __future__ import annotations

import json

import tornado.testing
import tornado.web

from simulators.acronis_http import BaseHandler
from simulators.acronis_state import SimulatorState


class EchoHandler(BaseHandler):
    endpoint = "jwks"

    async def get(self) -> None:
        if await self.faulted():
            return
        self.reply(200, {"echo": True}, note="real")


class BaseHandlerTest(tornado.testing.AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        self.state = SimulatorState({})
        return tornado.web.Application([("/x", EchoHandler, {"state": self.state})])

    def test_a_fault_answers_once_then_the_real_answer(self) -> None:
        self.state.add_faults([{"endpoint": "jwks", "status": 503, "retry_after": "2"}])
        first = self.fetch("/x")
        assert first.code == 503 and first.headers["Retry-After"] == "2"
        assert json.loads(first.body) == {"error": "injected 503"}
        second = self.fetch("/x")
        assert second.code == 200 and json.loads(second.body) == {"echo": True}
        requests = self.state.snapshot()["requests"]
        assert [(r["endpoint"], r["status"], r.get("fault"), r.get("note")) for r in requests] == [
            ("jwks", 503, True, None),
            ("jwks", 200, None, "real"),
        ]

    def test_a_delay_only_fault_still_answers_for_real(self) -> None:
        self.state.add_faults([{"endpoint": "*", "status": 0, "delay": 0.01}])
        assert self.fetch("/x").code == 200 and self.state.faults == []
