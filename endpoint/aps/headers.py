"""The APS request headers (aps.md §3.1): parsing, the controller-URI rules, the transaction id."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from endpoint.aps.settings import ApsSettings
from endpoint.errors import PayloadError

CONTROLLER_URI = "APS-Controller-URI"
INSTANCE_ID = "APS-Instance-ID"
TRANSACTION_ID = "APS-Transaction-ID"
REQUEST_PHASE = "APS-Request-Phase"
NAMES = (CONTROLLER_URI, INSTANCE_ID, TRANSACTION_ID, REQUEST_PHASE)
SYNC = "sync"
ASYNC = "async"

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", re.ASCII)
# Logged and echoed: printable ASCII without spaces only, so a header can never forge a log line.
_TRANSACTION = re.compile(r"[A-Za-z0-9._:~+/=-]{1,128}", re.ASCII)
MAX_URI = 512


@dataclass(frozen=True, slots=True)
class ApsHeaders:
    instance_id: str  # lower-case UUID
    controller_uri: str  # normalized (controller_base)
    transaction_id: str | None
    phase: str  # "sync" or "async"


def is_uuid(value: str) -> bool:
    return _UUID.fullmatch(value) is not None


def transaction_id(values: Sequence[str]) -> str | None:
    """The APS-Transaction-ID to log and echo, or None when absent or not plain printable text."""
    if len(values) != 1 or _TRANSACTION.fullmatch(values[0]) is None:
        return None
    return values[0]


def controller_base(value: str, *, development_mode: bool) -> str:
    """APS-Controller-URI normalized: lower-case scheme and host, no default port, a trailing '/'.

    The trailing slash matters: urljoin drops the last path segment of a base without one (aps.md §5).
    :raise ValueError: not an absolute https:// URL (http:// only in development mode), or carrying
        credentials, a query or a fragment.
    """
    if not value or len(value) > MAX_URI or any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in value):
        raise ValueError("must be an absolute URL of printable ASCII")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as e:
        raise ValueError("is not a valid URL") from e
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an absolute https:// URL")
    if scheme == "http" and not development_mode:
        raise ValueError("must be https:// (http:// only in APS development mode)")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ValueError("must not carry credentials, a query or a fragment")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, {"https": 443, "http": 80}[scheme]) else f"{host}:{port}"
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urlunsplit((scheme, netloc, path, "", ""))


def allowed(uri: str, patterns: Sequence[str]) -> bool:
    """True when no allowlist is configured or ``uri`` (normalized) matches one of its patterns."""
    return not patterns or any(fnmatch.fnmatchcase(uri, pattern) for pattern in patterns)


def parse_aps_headers(headers: Mapping[str, Sequence[str]], settings: ApsSettings) -> ApsHeaders:
    """The APS headers of one request; ``headers`` maps each name of NAMES to all its values.

    :raise PayloadError: (400) APS-Instance-ID or APS-Controller-URI missing, repeated or malformed,
        APS-Controller-URI not allowed by the allowlist, or an unknown APS-Request-Phase.
    """
    instance = _single(headers, INSTANCE_ID)
    if not is_uuid(instance):
        raise PayloadError(
            "Malformed request: APS-Instance-ID must be a UUID.", reason="APS-Instance-ID malformed"
        )
    raw_uri = _single(headers, CONTROLLER_URI)
    try:
        uri = controller_base(raw_uri, development_mode=settings.development_mode)
    except ValueError as e:
        raise PayloadError(
            f"Malformed request: APS-Controller-URI {e}.", reason=f"APS-Controller-URI {e}"
        ) from e
    if not allowed(uri, settings.controller_allowlist):
        raise PayloadError(
            "Bad request: APS-Controller-URI is not an allowed controller.",
            reason="APS-Controller-URI not in the allowlist",
        )
    phases = headers.get(REQUEST_PHASE) or []
    phase = phases[0].strip().lower() if len(phases) == 1 else (SYNC if not phases else "")
    if phase not in (SYNC, ASYNC):
        raise PayloadError("Malformed request: APS-Request-Phase must be sync or async.")
    return ApsHeaders(instance.lower(), uri, transaction_id(headers.get(TRANSACTION_ID) or []), phase)


def _single(headers: Mapping[str, Sequence[str]], name: str) -> str:
    values = headers.get(name) or []
    if not values:
        raise PayloadError(f"Malformed request: the {name} header is required.", reason=f"{name} missing")
    if len(values) > 1:
        raise PayloadError(f"Malformed request: the {name} header is repeated.", reason=f"{name} repeated")
    return values[0].strip()
