"""OAuth 2.0 client-credentials tokens: the Acronis token response parser and a single-flight cache per DC."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from oauthlib.oauth2 import BackendApplicationClient, OAuth2Error

from proxy.errors import AuthFailure

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: str = field(repr=False)
    expires_at: float  # absolute Unix time
    issued_at: float

    def fresh(self, now: float, margin: float) -> bool:
        # Short-lived tokens (under twice the margin) are refreshed at half-life instead of never being fresh.
        lifetime = self.expires_at - self.issued_at
        return now < self.expires_at - min(margin, lifetime / 2)


def token_request_body(client_id: str) -> str:
    """The form body of a client-credentials grant, built by oauthlib (RFC 6749 §4.4.2)."""
    return BackendApplicationClient(client_id=client_id).prepare_request_body()


def parse_token(client_id: str, body: str, now: float, default_lifetime: float) -> AccessToken:
    """Validate a token response; expiry from ``expires_on`` (absolute), else ``expires_in``, else default.

    :raise AuthFailure: when the body is not a usable bearer token (the message never includes it).
    """
    oauth = BackendApplicationClient(client_id=client_id)
    try:
        params = oauth.parse_request_body_response(body)
    except (OAuth2Error, ValueError, Warning) as e:
        raise AuthFailure(f"token response rejected: {type(e).__name__}") from e
    token_type = str(params.get("token_type", "bearer")).lower()
    if token_type != "bearer" or not isinstance(params.get("access_token"), str):
        raise AuthFailure(f"token response rejected: unsupported token type {token_type!r}")
    expires_at = _number(params.get("expires_on"))
    if expires_at is None:
        expires_in = _number(params.get("expires_in"))
        expires_at = now + (expires_in if expires_in is not None else default_lifetime)
    return AccessToken(params["access_token"], expires_at, now)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


class TokenCache:
    """One cached token; ``get()`` mints a new one under a lock, so a burst of callers mints exactly one."""

    def __init__(
        self,
        fetch: Callable[[], AccessToken],
        *,
        margin: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fetch = fetch
        self._margin = margin
        self._clock = clock
        self._lock = threading.Lock()
        self._token: AccessToken | None = None
        self.refreshes = 0

    def get(self) -> str:
        """:raise ConnectorError: from the fetch (AuthFailure, ProxyFailure, TransportError...)."""
        with self._lock:
            token = self._token
            if token is None or not token.fresh(self._clock(), self._margin):
                token = self._fetch()
                self._token = token
                self.refreshes += 1
            return token.value

    def invalidate(self, value: str) -> None:
        """Drop the token a server rejected (only that one: a concurrent refresh may have replaced it)."""
        with self._lock:
            if self._token is not None and self._token.value == value:
                self._token = None
