"""StandIns: route requests for configured hosts to local simulators, keeping path, query and Host exactly.

A routed flow shows the host the client asked for again once it is answered (or failed): mitmweb's flow
list, mitmdump's response lines and flow files name ``eu8-cloud.acronis.com:443``, never the simulator's
``127.0.0.1:9101``, which stays in the audit line's ``standin`` field.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from mitmproxy import addonmanager, ctx, exceptions, http
from mitmproxy.proxy import server_hooks
from specs import META_ANSWERED_BY, META_ORIGIN, META_STANDIN, StandIn, parse_standin

log = logging.getLogger(__name__)


class StandIns:
    """Send traffic for e.g. the Acronis data center host or the controller's public host to simulators."""

    def __init__(self) -> None:
        self.routes: list[StandIn] = []

    def load(self, loader: addonmanager.Loader) -> None:
        loader.add_option(
            "standins",
            Sequence[str],
            [],
            """
            Route a host to a local simulator: "HOST[:PORT]=URL", e.g.
            "acronis.example.com=http://127.0.0.1:9101". Repeat the option for more hosts. Path and query are
            kept byte for byte and the Host header keeps the public name. https:// targets tunnelled with
            CONNECT are intercepted with mitmproxy's CA, which the client must trust.
            """,
        )

    def configure(self, updated: set[str]) -> None:
        if "standins" in updated:
            routes = []
            for text in ctx.options.standins:
                try:
                    routes.append(parse_standin(text))
                except ValueError as e:
                    raise exceptions.OptionsError(f"standins: {e}") from e
            self.routes = routes
            for route in routes:
                port = f":{route.port}" if route.port else ""
                log.info("stand-in: %s%s -> %s", route.host, port, route.url)

    def route_for(self, host: str, port: int) -> StandIn | None:
        host = host.lower().rstrip(".")
        for route in self.routes:
            if route.host == host and route.port in (None, port):
                return route
        return None

    def http_connect(self, flow: http.HTTPFlow) -> None:
        """Accept tunnels to stand-in hosts ourselves, so mitmproxy never dials the real host."""
        if flow.response is not None:
            return  # answered already, e.g. mitmproxy's own proxyauth (407) or the allowlist (403)
        route = self.route_for(flow.request.host, flow.request.port)
        if not route:
            return
        flow.metadata[META_STANDIN] = route.url
        flow.metadata.setdefault(META_ANSWERED_BY, "stand-in")
        if flow.response is None:
            # With connection_strategy=eager (the default) mitmproxy would open a connection to the real host
            # right after this hook unless a response is already set; this is the reply it would send.
            flow.response = http.Response(
                flow.request.data.http_version,
                200,
                b"Connection established",
                http.Headers(),
                b"",
                None,
                time.time(),
                time.time(),
            )

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        """Refuse any connection to a stand-in's real host (eager mode tries one to copy its TLS setup)."""
        address = data.server.address
        if address and self.route_for(address[0], address[1]):
            data.server.error = f"stand-in for {address[0]}: the real host is never contacted"

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        req = flow.request
        route = self.route_for(req.host, req.port)
        if not route:
            return
        flow.metadata[META_ORIGIN] = (req.scheme, req.host, req.port)
        flow.metadata[META_STANDIN] = route.url
        flow.metadata[META_ANSWERED_BY] = "stand-in"
        host_header = req.host_header
        req.scheme = route.target_scheme
        req.host = route.target_host  # setting host/port rewrites Host; put the public name back below
        req.port = route.target_port
        if host_header is not None:
            req.host_header = host_header
        log.debug("stand-in %s -> %s%s", host_header, route.url, req.path)

    def response(self, flow: http.HTTPFlow) -> None:
        self._show_origin(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._show_origin(flow)

    @staticmethod
    def _show_origin(flow: http.HTTPFlow) -> None:
        """Put back the destination the client asked for: past the response mitmproxy no longer uses it
        to connect, and every view of the flow (mitmweb, flow files) shows the real name and port."""
        origin = flow.metadata.get(META_ORIGIN)
        if not origin or META_STANDIN not in flow.metadata:
            return
        req = flow.request
        host_header = req.host_header
        req.scheme, req.host, req.port = origin  # host/port rewrite Host; the client's one goes back below
        if host_header is not None:
            req.host_header = host_header


addons = [StandIns()]
