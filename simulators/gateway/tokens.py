"""The gateway's Bearer JWT: RS256 with the identity provider's current key, and the broken kinds a verifier
must refuse (Acronis verification's three checks, and the attacks every JWT verifier has to withstand).

A valid token (header and claims as the Acronis docs show them): header ``{"alg": "RS256", "kid", "iri",
"typ": "JWT"}``; claims ``iss``, ``aud``, ``iat``, ``exp`` = iat + 3600, ``jti``, ``sub``, ``scope`` =
``[{"role": <endpoint id>}]``, ``ver`` 2, ``sub_type`` ``platform-acgw``. The docs' header carries an ``iri``
whose value they elide; an opaque one is sent, so a verifier shows it ignores parameters it does not use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt

from simulators.keyring import RingKey, new_key

ISSUER = "https://acronis.cloud"
AUDIENCE = "acronis.cloud"
LIFETIME = 3600
SUBJECT = "0d780ce3-5b1f-4c8e-9d5a-6b2f1e7a9c40"  # the gateway's own identity (any stable UUID)
IRI = "urn:acronis:acgw:simulator"
OTHER_APP_ENDPOINT = "cti.a.p.acgw.endpoint.v1.0~other.app.endpoint.v1.0"

TOKEN_KINDS: dict[str, str] = {
    "valid": "RS256 with the current key, scope = this endpoint id",
    "missing": "no Authorization header (Acronis verification check 1)",
    "corrupt": "a valid token with its signature altered (check 2)",
    "other-app": "a valid token issued for another CyberApp: scope role is another endpoint id (check 3)",
    "wrong-issuer": "signed correctly, iss is not the Acronis issuer",
    "expired": "signed correctly, expired an hour ago (beyond any leeway)",
    "alg-none": 'alg "none" and no signature',
    "hs256": "HS256 keyed with the RSA public key (algorithm confusion)",
    "unknown-kid": "signed with a key no JWKS lists (a random kid)",
}


@dataclass
class TokenFactory:
    """Mints tokens for the gateway; a valid token is reused per endpoint id until near its expiry, as the
    gateway does (its tokens live an hour)."""

    signing_key: Callable[[], RingKey]
    issuer: str = ISSUER
    audience: str = AUDIENCE
    subject: str = SUBJECT
    clock: Callable[[], float] = time.time
    _cache: dict[str, tuple[str, float]] = field(default_factory=dict, repr=False)

    def claims(self, role: str, *, issued_at: float | None = None) -> dict[str, Any]:
        iat = int(self.clock() if issued_at is None else issued_at)
        return {
            "aud": self.audience,
            "exp": iat + LIFETIME,
            "jti": str(uuid.uuid4()),
            "iat": iat,
            "iss": self.issuer,
            "sub": self.subject,
            "scope": [{"role": role}],
            "ver": 2,
            "sub_type": "platform-acgw",
        }

    def valid(self, role: str) -> str:
        token, expires = self._cache.get(role, ("", 0.0))
        if expires - 60 > self.clock():
            return token
        claims = self.claims(role)
        token = sign(self.signing_key(), claims)
        self._cache[role] = (token, float(claims["exp"]))
        return token

    def token(self, kind: str, role: str) -> str | None:
        """The token of ``kind`` (see TOKEN_KINDS) for ``role``; None for "missing".

        :raise ValueError: an unknown kind.
        """
        if kind == "valid":
            return self.valid(role)
        if kind == "missing":
            return None
        if kind == "corrupt":
            return corrupt(self.valid(role))
        if kind == "other-app":
            return sign(self.signing_key(), self.claims(OTHER_APP_ENDPOINT))
        if kind == "wrong-issuer":
            return sign(self.signing_key(), {**self.claims(role), "iss": "https://idp.attacker.example"})
        if kind == "expired":
            return sign(self.signing_key(), self.claims(role, issued_at=self.clock() - 2 * LIFETIME))
        if kind == "alg-none":
            return unsigned(self.claims(role), self.signing_key().kid)
        if kind == "hs256":
            key = self.signing_key()
            return hmac_with_public_key(self.claims(role), key.kid, key.public_pem())
        if kind == "unknown-kid":
            return sign(new_key(), self.claims(role))
        raise ValueError(f"unknown token kind {kind!r}; one of {', '.join(TOKEN_KINDS)}")


def sign(key: RingKey, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "iri": IRI})


def corrupt(token: str) -> str:
    """The same token with one signature byte changed (still well-formed base64url)."""
    head, payload, signature = token.split(".")
    raw = bytearray(_unb64(signature))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{payload}.{_b64(bytes(raw))}"


def unsigned(claims: dict[str, Any], kid: str) -> str:
    return f"{_b64_json({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_b64_json(claims)}."


def hmac_with_public_key(claims: dict[str, Any], kid: str, public_pem: bytes) -> str:
    """HS256 keyed with the PEM public key: what a verifier that lets the token pick the algorithm accepts
    (built by hand: JOSE libraries refuse to make it)."""
    signing_input = f"{_b64_json({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{_b64_json(claims)}"
    digest = hmac.new(public_pem, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(digest)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64_json(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())
