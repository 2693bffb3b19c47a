"""The simulator's identity-provider keys: the public JWKS and the /_sim/jwks controls.

- ``GET /api/idp/v1/keys``: ``{"keys": [{"use", "kty", "kid", "alg", "n", "e"}]}``, as Acronis publishes it.
  "JWKS down" is an ordinary injected fault on the ``jwks`` endpoint, e.g. ``POST /_sim/faults``
  ``{"faults": [{"endpoint": "jwks", "status": 503, "count": -1}]}`` (``DELETE /_sim/faults?endpoint=jwks``
  ends it); a ``delay`` makes it slow instead.
- ``GET /_sim/jwks``: the ring's status (signing kid, published and withheld kids; never private keys).
- ``POST /_sim/jwks/rotate`` ``{"publish": true, "keep": 1}``: a new signing key; ``keep`` older keys stay.
- ``POST /_sim/jwks/withhold``: the "unknown kid" fault -- a new signing key the JWKS does not list.
- ``POST /_sim/jwks/publish``: list every withheld key (the fault ends; a refetch now finds the kid).
"""

from __future__ import annotations

from typing import Any

import tornado.web

from simulators.acronis_http import BaseHandler

# Acronis does not document caching headers for its JWKS; a verifier decides its own refresh interval.
JWKS_PATH = "/api/idp/v1/keys"


class JwksHandler(BaseHandler):
    endpoint = "jwks"

    async def get(self) -> None:
        if await self.faulted():
            return
        jwks = self.state.keyring.jwks()
        self.reply(200, jwks, kids=[key["kid"] for key in jwks["keys"]])


class JwksControlHandler(BaseHandler):
    def get(self, action: str | None) -> None:
        if action:
            raise tornado.web.HTTPError(405)
        self.write(self.state.keyring.status())

    def post(self, action: str | None) -> None:
        ring = self.state.keyring
        if action == "rotate":
            options = self._options()
            try:
                publish, keep = bool(options.get("publish", True)), int(options.get("keep", 1))
                key = ring.rotate(publish=publish, keep=keep)
            except (TypeError, ValueError) as e:
                raise tornado.web.HTTPError(400, reason=str(e)[:200]) from e
            self.write({**ring.status(), "new_kid": key.kid})
        elif action == "withhold":
            key = ring.rotate(publish=False, keep=int(self._options().get("keep", 1)))
            self.write({**ring.status(), "new_kid": key.kid})
        elif action == "publish":
            self.write({"published_now": ring.publish(), **ring.status()})
        else:
            raise tornado.web.HTTPError(404)

    def _options(self) -> dict[str, Any]:
        body = self.json_body() if self.request.body else {}
        if not isinstance(body, dict):
            raise tornado.web.HTTPError(400, reason="expected a JSON object")
        return body


def jwks_routes(deps: dict[str, Any]) -> list[tuple[str, type[BaseHandler], dict[str, Any]]]:
    return [
        (JWKS_PATH, JwksHandler, deps),
        (r"/_sim/jwks(?:/(rotate|withhold|publish))?", JwksControlHandler, deps),
    ]
