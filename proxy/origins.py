"""One spelling per data center: the key mappings are stored under and configured data centers match by."""

from __future__ import annotations

from urllib.parse import urlsplit

_DEFAULT_PORTS = {"https": 443, "http": 80}


def normalize_datacenter_url(url: str) -> str:
    """``scheme://host[:port]`` in lower case, without the default port, path, query or fragment.

    A data center is an origin: every API path is built below it, so two spellings of one origin
    (host case, ``:443``, a trailing ``/``) must compare equal wherever a URL is stored or looked up. The
    scheme is kept: callbacks only ever carry https (their schema says so), while a local stand-in is
    configured as http.
    :raise ValueError: a malformed port.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    suffix = f":{port}" if port is not None and port != _DEFAULT_PORTS.get(scheme) else ""
    return f"{scheme}://{host}{suffix}"
