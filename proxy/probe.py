"""Reachability of the configured outbound proxy: one TCP connect with a short timeout, no details out."""

from __future__ import annotations

import logging
import socket
from urllib.parse import urlsplit

from proxy.session import ProxySettings

log = logging.getLogger(__name__)

NOT_CONFIGURED = "not configured"
OK = "ok"
UNREACHABLE = "unreachable"
DEFAULT_PORTS = {"http": 80, "https": 443}  # what urllib3 uses for a proxy URL without a port


def proxy_address(settings: ProxySettings) -> tuple[str, int] | None:
    """(host, port) of the configured proxy, or None when outbound calls go direct."""
    if settings.url is None:
        return None
    parts = urlsplit(settings.url)
    return parts.hostname or "", parts.port or DEFAULT_PORTS[parts.scheme]


def probe_proxy(settings: ProxySettings, timeout: float) -> str:
    """ "ok", "unreachable" or "not configured". Blocks up to ``timeout`` (run it in an executor).

    Only a TCP handshake: it proves the proxy listens, not that it will tunnel (that needs credentials
    and a target, and would cost the proxy a log line per health check).
    """
    address = proxy_address(settings)
    if address is None:
        return NOT_CONFIGURED
    try:
        with socket.create_connection(address, timeout=timeout):
            return OK
    except OSError as e:
        log.warning("health check: outbound proxy unreachable (%s)", type(e).__name__)
        return UNREACHABLE
