"""The client address behind the inbound proxy: forwarding headers count only from trusted peers.

Tornado's ``xheaders`` would believe X-Forwarded-For / X-Real-Ip / X-Scheme from anyone who can reach
the port (security-checklist §8.2), so the server runs without it and this module decides instead.
The result is used for logs and rate limits only — never for the signed URL (aps.md §2.3).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from tornado.httputil import HTTPHeaders

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(peer: str, headers: HTTPHeaders, trusted: Sequence[Network]) -> str:
    """The TCP peer, or — when the peer is a trusted proxy — the nearest untrusted hop it reports."""
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for value in headers.get_list("X-Forwarded-For") for hop in value.split(",")]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a garbled chain is not evidence of anything
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer
