"""InboundForwarding: reverse-proxy forwarding headers (overwritten, never appended), APS-Controller-URI."""

from __future__ import annotations

import ipaddress
import logging

from mitmproxy import addonmanager, ctx, exceptions, http
from mitmproxy.proxy import mode_specs
from specs import parse_controller_uri

log = logging.getLogger(__name__)

# Headers a client could send to make the endpoint believe a different scheme or client address.
# Tornado's xheaders lets X-Scheme beat X-Forwarded-Proto and X-Real-Ip beat X-Forwarded-For
# (security-checklist.md §8.2), and cbcext-style code reads X-Forwarded-Host (IABTechLab/trusted-server#409),
# so only this proxy may set any of them.
STRIPPED = (
    "X-Scheme",
    "X-Real-Ip",
    "X-Forwarded-Host",
    "X-Forwarded-Port",
    "X-Forwarded-Prefix",
    "X-Forwarded-Server",
    "X-Forwarded-Ssl",
    "X-Url-Scheme",
    "Front-End-Https",
    "Forwarded",
)


def client_ip(peername: tuple) -> str:
    """The client's IP as the endpoint should log it (IPv4-mapped IPv6 shown as IPv4, no zone id)."""
    text = str(peername[0]).split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)


class InboundForwarding:
    """Set X-Forwarded-For/-Proto from the connection, strip spoofable ones, optionally set the controller."""

    def __init__(self) -> None:
        self.controller_uri: str | None = None

    def load(self, loader: addonmanager.Loader) -> None:
        loader.add_option(
            "inbound_controller_uri",
            str | None,
            None,
            """
            When set, every request forwarded to the endpoint carries this APS-Controller-URI (replacing any
            the client sent), e.g. the local controller simulator's public URL "https://apsc.example.com:6308/".
            """,
        )

    def configure(self, updated: set[str]) -> None:
        if "inbound_controller_uri" in updated:
            value = ctx.options.inbound_controller_uri
            try:
                self.controller_uri = parse_controller_uri(value) if value else None
            except ValueError as e:
                raise exceptions.OptionsError(f"inbound_controller_uri: {e}") from e

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        # Only in reverse mode: as a forward proxy this would leak the client address to remote servers.
        if flow.response or not isinstance(flow.client_conn.proxy_mode, mode_specs.ReverseMode):
            return
        headers = flow.request.headers
        for name in STRIPPED:
            headers.pop(name, None)
        # Assignment replaces every existing value: a client-sent "X-Forwarded-For: 10.0.0.1" never survives.
        headers["X-Forwarded-For"] = client_ip(flow.client_conn.peername)
        headers["X-Forwarded-Proto"] = "https" if flow.client_conn.tls else "http"
        if self.controller_uri:
            headers["APS-Controller-URI"] = self.controller_uri
        # flow.request.path is deliberately untouched: the OAuth signature covers the raw URI (aps.md §2.3).


addons = [InboundForwarding()]
