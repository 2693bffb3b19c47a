"""GET the identity provider's JWKS through the one outbound session: no redirects, bounded size and time."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import requests

from proxy.errors import ConnectorError, TransportError

MAX_JWKS_BYTES = 64 * 1024  # a JWKS of a few 4096-bit keys is ~3 KiB; anything near this is not one
FETCH_DEADLINE = 30.0  # seconds for the whole body, however slowly it trickles in


class JwksRefused(ConnectorError):
    """The JWKS host answered, but not with a document we take (status, size, time)."""


def fetch_jwks(
    session: requests.Session,
    url: str,
    *,
    max_bytes: int = MAX_JWKS_BYTES,
    deadline: float = FETCH_DEADLINE,
) -> bytes:
    """The JWKS body as sent (the session applies the proxy, CA bundle and timeouts).

    :raise JwksRefused: not 200, over ``max_bytes``, or slower than ``deadline`` seconds.
    :raise ConnectorError: the session's own failures (ProxyFailure, DirectEgressRefused), and requests'
        as TransportError.
    """
    host = urlsplit(url).netloc
    started = time.monotonic()
    try:
        with session.get(
            url, stream=True, allow_redirects=False, headers={"Accept": "application/json"}
        ) as response:
            if response.status_code != 200:
                raise JwksRefused(f"JWKS {host}: HTTP {response.status_code}")
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise JwksRefused(f"JWKS {host}: {length} bytes (at most {max_bytes})")
            body = bytearray()
            for chunk in response.iter_content(8192):
                body += chunk
                if len(body) > max_bytes:
                    raise JwksRefused(f"JWKS {host}: over {max_bytes} bytes")
                if time.monotonic() - started > deadline:
                    raise JwksRefused(f"JWKS {host}: body not received within {deadline:.0f}s")
            return bytes(body)
    except ConnectorError:
        raise
    except requests.RequestException as e:
        raise TransportError(f"JWKS {host}: {type(e).__name__}") from e
