"""Strict parsing and format checks of the OAuth 1.0 protocol parameters, before oauthlib sees them.

oauthlib's own header parser folds duplicate parameters into a dict (the last one wins) and accepts
unterminated quotes, so duplicates (RFC 5849 §3.1) must be caught here. Consumer keys follow the
controller's format (letters, digits and '-'); nonces follow RFC 5849 §3.3, which sets no alphabet: any
printable ASCII of 1-128 characters once decoded (base64 nonces of common clients included). Uniqueness
per consumer within the window, not the alphabet, is what stops replays. The size of the whole header is
capped once, before parsing, by the stage pipeline (endpoint/auth/stages.py).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from oauthlib.oauth1.rfc5849.utils import unescape

from endpoint.errors import AuthenticationFailed, PayloadError

KEY_PATTERN = re.compile(r"[A-Za-z0-9-]{8,128}")
NONCE_PATTERN = re.compile(r"[\x20-\x7e]{1,128}")  # printable ASCII (RFC 5849 §3.3)
TIMESTAMP_PATTERN = re.compile(r"[0-9]{10}")
# One ``name="value"`` item of the comma-separated list and its separator. Matched item by item from the
# start of the list, so anything between items (a stray token, an unterminated or embedded quote) fails.
# urllib's parse_http_list walks the header a character at a time (~3 % of a request's CPU).
_ITEM = re.compile(r'\s*([A-Za-z_]+)="([^"]*)"\s*(?:,|\Z)')
_REQUIRED = (
    "oauth_consumer_key",
    "oauth_signature",
    "oauth_signature_method",
    "oauth_timestamp",
    "oauth_nonce",
)
_ALLOWED = frozenset(_REQUIRED) | {"oauth_version", "oauth_body_hash", "realm"}


@dataclass(frozen=True, slots=True)
class OAuthParameters:
    consumer_key: str
    nonce: str
    timestamp: int
    signature_method: str
    body_hash: str | None
    signature: str = field(repr=False)
    # Every protocol parameter the signature covers (all but oauth_signature and realm), decoded.
    signed_pairs: tuple[tuple[str, str], ...] = ()


def parse_authorization(header: str | None, allowed_methods: tuple[str, ...]) -> OAuthParameters:
    """Parse ``Authorization: OAuth ...`` strictly.

    :raise AuthenticationFailed: no OAuth header, or an access token on this two-legged endpoint.
    :raise PayloadError: malformed, duplicated, unknown or missing parameters, bad formats.
    """
    if not header:
        raise AuthenticationFailed(reason="no Authorization header")
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != "oauth":
        raise AuthenticationFailed(reason="Authorization scheme is not OAuth")
    params: dict[str, str] = {}
    position, end = 0, len(rest)
    while position < end:
        match = _ITEM.match(rest, position)
        if not match:
            raise PayloadError(reason="malformed OAuth parameter in Authorization header")
        name, value = match.group(1), match.group(2)
        if "%" in value:  # most values are plain; unquoting them anyway costs ~1 % of a request
            value = unescape(value)
        if name in params:
            raise PayloadError(reason=f"duplicated OAuth parameter {name}")
        params[name] = value
        position = match.end()
    if "oauth_token" in params:
        # Two-legged only; oauthlib would reach get_access_token_secret (NotImplementedError -> 500).
        raise AuthenticationFailed(reason="oauth_token sent to a two-legged endpoint")
    unknown = sorted(set(params) - _ALLOWED)
    if unknown:
        raise PayloadError(reason=f"unsupported OAuth parameter {unknown[0]}")
    missing = [name for name in _REQUIRED if not params.get(name)]
    if missing:
        raise PayloadError(reason=f"missing OAuth parameter {missing[0]}")
    if params.get("oauth_version", "1.0") != "1.0":
        raise PayloadError(reason="oauth_version is not 1.0")
    method = params["oauth_signature_method"]
    if method not in allowed_methods:
        raise PayloadError(reason=f"signature method {method[:20]!r} not allowed")
    if not KEY_PATTERN.fullmatch(params["oauth_consumer_key"]):
        raise PayloadError(reason="malformed consumer key")
    if not NONCE_PATTERN.fullmatch(params["oauth_nonce"]):
        raise PayloadError(reason="malformed nonce")
    if not TIMESTAMP_PATTERN.fullmatch(params["oauth_timestamp"]):
        raise PayloadError(reason="malformed timestamp")
    return OAuthParameters(
        consumer_key=params["oauth_consumer_key"],
        nonce=params["oauth_nonce"],
        timestamp=int(params["oauth_timestamp"]),
        signature_method=method,
        body_hash=params.get("oauth_body_hash"),
        signature=params["oauth_signature"],
        signed_pairs=tuple((k, v) for k, v in params.items() if k not in ("oauth_signature", "realm")),
    )


def check_freshness(timestamp: int, window: int, now: float | None = None) -> None:
    """Symmetric window: old and far-future timestamps alike (security-checklist §5, item 3).

    :raise AuthenticationFailed: outside the window.
    """
    skew = (time.time() if now is None else now) - timestamp
    if abs(skew) > window:
        raise AuthenticationFailed(reason=f"timestamp outside the {window}s window (skew {skew:+.0f}s)")


def reject_oauth_query_parameters(raw_uri: str) -> None:
    """Protocol parameters travel in exactly one place, the header (RFC 5849 §3.5).

    :raise PayloadError: an ``oauth_*`` parameter in the query string, or an undecodable query.
    """
    query = urlsplit(raw_uri).query
    if not query:
        return
    try:
        # Names are compared decoded: "%6Fauth_nonce" is oauth_nonce to oauthlib too.
        names = [name for name, _ in parse_qsl(query, keep_blank_values=True, strict_parsing=False)]
    except ValueError as e:
        raise PayloadError(reason="undecodable query string") from e
    if any(name.startswith("oauth_") for name in names):
        raise PayloadError(reason="OAuth parameters in the query string as well as the header")
