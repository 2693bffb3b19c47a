"""Transport-authentication stages: each verifies a whole request and names its principal.

A deployment runs exactly the stages it configures and never falls back from a failed scheme to
another (acronis-callbacks.md §1). The Acronis gateway's RS256 Bearer JWT would be one more class here.
"""

from __future__ import annotations

from typing import Protocol

from endpoint.auth.identity import VerifiedConsumer
from endpoint.auth.oauth import InboundRequest, SignatureVerifier
from endpoint.executors import DatabaseRunner


class TransportStage(Protocol):
    async def verify(self, request: InboundRequest) -> VerifiedConsumer:
        """:raise PayloadError: malformed (400). :raise AuthenticationFailed: rejected (401)."""
        ...


class OAuthStage:
    """OAuth 1.0 HMAC signature + nonce, run in one database unit of work (consumer lookup, nonce)."""

    def __init__(self, verifier: SignatureVerifier, db: DatabaseRunner) -> None:
        self._verifier = verifier
        self._db = db

    async def verify(self, request: InboundRequest) -> VerifiedConsumer:
        return await self._db.run(self._verifier.verify, request)
