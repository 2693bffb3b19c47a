"""The Acronis API simulator's handler base: injected faults, JSON answers, and the request record."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import tornado.web

from simulators.acronis_state import SimulatorState


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
