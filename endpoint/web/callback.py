"""POST /callback: the Acronis CyberApp callback route (acronis-callbacks.md §7 processing order).

It runs as a lean exchange (``endpoint/web/exchange.py``), not a RequestHandler: it is nearly all of the
traffic, and RequestHandler's machinery cost more per request than the signature check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from endpoint.auth.acronis_jwt import bind_endpoint
from endpoint.auth.credentials import decode_extra_header
from endpoint.auth.end_user import Account, EndUserStage, LoginAttempt
from endpoint.auth.identity import AuthenticatedUser
from endpoint.callbacks.envelope import Envelope, MalformedCallback, parse_callback_request
from endpoint.callbacks.responses import CallbackResponse, error_envelope
from endpoint.web.admission import require_json_content_type
from endpoint.web.exchange import Exchange


@dataclass(frozen=True, slots=True)
class _Round:
    """What the request's database round returns: the account, and the answer when the cache sufficed."""

    account: Account | None
    user: AuthenticatedUser | None
    response: CallbackResponse | None


class CallbackExchange(Exchange):
    """Thin: (transport verified on the headers) -> parse -> end user -> one unit of work -> the envelope.

    With a remembered credential (the steady state) the request makes one database round: nonce, account
    and the callback together. A cold credential adds argon2 on its executor and a second round.
    """

    route_label = "callback"
    request_id: str | None = None

    def check_headers(self) -> None:
        require_json_content_type(self.headers)

    async def handle(self, body: bytes) -> None:
        self.check_body(body)
        try:
            envelope = parse_callback_request(body)  # 3-4: strict JSON, envelope schema (400)
        except MalformedCallback as e:
            self.request_id = e.request_id  # what the error envelope may echo of an unparsed body
            raise
        self.request_id = envelope.request_id
        self.log_fields.update(request_id=envelope.request_id, callback=envelope.callback_id)
        settings = self.runtime.settings
        skew = envelope.created_at_skew(time.time())  # logged only; None for the zero time (not given)
        if skew is not None and abs(skew) > settings.endpoint.timestamp_window:
            self.log_fields["created_skew"] = round(skew)
        assert self.consumer is not None
        # 4: a gateway token must be for this endpoint, which becomes the principal (401); OAuth: as is.
        consumer = self.consumer = bind_endpoint(self.consumer, envelope.endpoint_id, settings.acronis_jwt)
        self.log_fields["principal"] = consumer.key
        decode_extra_header(self.headers.get("X-CyberApp-Extra"))  # 5 (400)
        dispatcher = self.runtime.dispatcher
        if not dispatcher.needs_end_user(envelope.callback_id):
            # Mirroring: no credentials; the acting party is the Acronis tenant (X-CyberApp-Auth unread).
            response = await self.runtime.db.run(self._for_tenant, envelope)
            self._answer_with(response)
            return
        end_user = self.stages.end_user
        assert end_user is not None, "the callback route is declared with an end-user stage"
        attempt = end_user.attempt(self.headers.get("X-CyberApp-Auth"), self.client_ip)  # 401/429
        found = await self.runtime.db.run(self._answer, end_user, attempt, envelope)  # nonce, 5-8
        user, answer = found.user, found.response
        if user is None:  # not remembered: argon2 off the loop, then the callback in a second round
            user = await end_user.verify(attempt, found.account)
        self.log_fields["user"] = user.login
        if answer is None:
            answer = await dispatcher.dispatch(consumer.key, user, envelope)
        self._answer_with(answer)

    def _answer_with(self, response: CallbackResponse) -> None:
        # orjson: 2 us for a 50-user answer where json.dumps takes 42 us (5 % of a request's CPU).
        self.respond(response.status, orjson.dumps(response.body))

    def _for_tenant(self, envelope: Envelope) -> CallbackResponse:
        """The unit of work of a callback without an end user: the nonce, then the callback."""
        self.record_nonce()
        assert self.consumer is not None
        return self.runtime.dispatcher.answer_for_tenant(self.consumer.key, envelope)

    def _answer(self, end_user: EndUserStage, attempt: LoginAttempt, envelope: Envelope) -> _Round:
        """The unit of work: the nonce, the account, and the callback if the cache vouches."""
        self.record_nonce()
        account = end_user.lookup(attempt)
        user = end_user.from_cache(attempt, account)
        if self.runtime.metrics is not None:
            self.runtime.metrics.credential_cache.labels("miss" if user is None else "hit").inc()
        if user is None:
            return _Round(account, None, None)
        assert self.consumer is not None
        return _Round(account, user, self.runtime.dispatcher.answer(self.consumer.key, user, envelope))

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        return error_envelope(self.request_id, message, self.runtime.settings.endpoint.app_code)
