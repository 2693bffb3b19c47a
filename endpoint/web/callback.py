"""POST /callback: the Acronis CyberApp callback route (acronis-callbacks.md §7 processing order)."""

from __future__ import annotations

from typing import Any

from endpoint.auth.credentials import decode_extra_header
from endpoint.callbacks.envelope import parse_callback_request
from endpoint.callbacks.responses import error_envelope
from endpoint.errors import PayloadError
from endpoint.web.base import BaseHandler


class CallbackHandler(BaseHandler):
    """Thin: verify -> parse -> authenticate the end user -> dispatch -> write the envelope."""

    request_id: str | None = None

    def prepare(self) -> None:
        super().prepare()
        if self.request.method == "POST":
            self.require_json_content_type()

    async def post(self) -> None:
        consumer = await self.verified()  # 1-2: transport signature, timestamp, nonce (401)
        try:
            envelope = parse_callback_request(self.body)  # 3-4: strict JSON, envelope schema (400)
        except PayloadError as e:
            self.request_id = getattr(e, "request_id", None)
            raise
        self.request_id = envelope.request_id
        self.log_fields.update(request_id=envelope.request_id, callback=envelope.callback_id)
        decode_extra_header(self.request.headers.get("X-CyberApp-Extra"))  # 5 (400)
        user = await self.runtime.authenticator.authenticate(  # 5 (401/429)
            self.request.headers.get("X-CyberApp-Auth"), self.client_ip
        )
        self.log_fields["user"] = user.login
        response = await self.runtime.dispatcher.dispatch(consumer.key, user, envelope)  # 6-8
        self.set_status(response.status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(response.body)

    def error_body(self, status_code: int, message: str) -> dict[str, Any]:
        return error_envelope(self.request_id, message, self.runtime.settings.endpoint.app_code)
