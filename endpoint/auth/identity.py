"""Who is calling: the verified transport principal and the authenticated end user."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class VerifiedConsumer:
    """A request whose transport signature verified; ``key`` is the ledger principal.

    ``nonce`` and ``timestamp`` are recorded in the database by the request's unit of work (the one
    database round of the request), ``body_hash`` is checked once the body has arrived. A gateway JWT
    has no nonce; it carries its ``scope_roles`` (None for OAuth) to be matched against the body's
    endpoint id, and ``audit`` fields (``jti``, ``aud``) for the request's log line.
    """

    key: str
    secret_id: int  # which of the consumer's secrets matched (rotation audit), never the secret
    nonce: str | None = None
    timestamp: int = 0
    body_hash: str | None = None
    signature_method: str = "HMAC-SHA1"
    scope_roles: tuple[str, ...] | None = None
    audit: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class AuthenticatedUser:
    """The end user behind X-CyberApp-Auth; their organization is the acting organization (ORG)."""

    user_id: str
    login: str
    organization_id: str
    organization_kind: str
