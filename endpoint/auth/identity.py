"""Who is calling: the verified transport principal and the authenticated end user."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class VerifiedConsumer:
    """A request whose OAuth 1.0 signature verified; ``key`` is the ledger principal."""

    key: str
    secret_id: int  # which of the consumer's secrets matched (rotation audit), never the secret


@dataclass(frozen=True, slots=True)
class AuthenticatedUser:
    """The end user behind X-CyberApp-Auth; their organization is the acting organization (ORG)."""

    user_id: str
    login: str
    organization_id: str
    organization_kind: str
