"""GET /healthz: liveness; database, outbound proxy and the gateway's keys (unauthenticated, no details)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import peewee as pw

from endpoint.errors import NotFound, Unavailable
from endpoint.web.base import BaseHandler
from models import db
from proxy.probe import NOT_CONFIGURED, OK, probe_proxy

log = logging.getLogger(__name__)

PROXY_PROBE_TIMEOUT = 2.0  # seconds; a load balancer's health check usually gives up after 5


def _ping_database() -> None:
    db.execute_sql("SELECT 1")


class NotFoundHandler(BaseHandler):
    """Every unrouted path: a JSON 404 with our headers instead of Tornado's HTML page."""

    route_label = "unrouted"

    def prepare(self) -> None:
        raise NotFound(reason=f"no route for {self.request.path[:100]!r}")


class HealthHandler(BaseHandler):
    """Database and outbound-proxy reachability; 503 only when the database is unreachable.

    Callbacks never go outbound, so an unreachable proxy reports "degraded" with 200: a load balancer
    must not pull an instance that still answers the controller (the outbox waits for the proxy anyway).
    With the gateway's JWT on, ``jwks`` shows the key store (endpoint/auth/jwks.py): state, key count,
    last success, last failure's category. Stale or missing keys are "degraded" with 200 as well: every
    instance fetches the same JWKS, so pulling one would not help, and its APS routes still work.
    """

    route_label = "healthz"

    async def get(self) -> None:
        database, proxy = await asyncio.gather(self._database(), self._proxy())
        serving = database == OK
        jwks = self.runtime.jwks.status() if self.runtime.jwks is not None else None
        healthy = serving and proxy in (OK, NOT_CONFIGURED) and (jwks is None or jwks["state"] == OK)
        body: dict[str, Any] = {
            "status": "ok" if healthy else "degraded",
            "database": database,
            "proxy": proxy,
        }
        if jwks is not None:
            body["jwks"] = jwks
        self.set_status(200 if serving else 503)
        self.finish(body)

    async def _database(self) -> str:
        try:
            await self.runtime.db.run(_ping_database)
        except (pw.PeeweeException, OSError, Unavailable) as e:
            cause = e.__cause__ if isinstance(e, Unavailable) and e.__cause__ is not None else e
            log.warning("health check: database unreachable (%s)", type(cause).__name__)
            return "unreachable"
        return OK

    async def _proxy(self) -> str:
        settings = self.runtime.settings.proxy
        timeout = min(settings.connect_timeout, PROXY_PROBE_TIMEOUT)
        # A blocking connect, so off the IOLoop (the default executor, not the database threads).
        return await asyncio.get_running_loop().run_in_executor(None, probe_proxy, settings, timeout)


class PublicHealthHandler(HealthHandler):
    """/healthz on the serving port: answered to direct callers (a load balancer, a probe on the host),
    404 to a request that came through the inbound proxy unless ``endpoint.health_via_proxy``.

    The inbound proxies (nginx, the rig's mitmdump) always add X-Forwarded-For, and a client cannot remove
    what they add; a direct caller sends none. Health details are for operators, not for the Internet:
    the operations listener (metrics.port) serves the same answer off the public path.
    """

    def check_request(self) -> None:
        headers = self.request.headers
        forwarded = "X-Forwarded-For" in headers or "Forwarded" in headers
        if forwarded and not self.runtime.settings.endpoint.health_via_proxy:
            raise NotFound(reason="/healthz through the inbound proxy (endpoint.health_via_proxy is off)")
