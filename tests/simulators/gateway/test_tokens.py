"""The gateway's tokens: the documented header and claims, reuse, and every broken kind fails as intended."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import jwt
import pytest

from simulators.gateway.tokens import (
    AUDIENCE,
    ISSUER,
    LIFETIME,
    OTHER_APP_ENDPOINT,
    TOKEN_KINDS,
    TokenFactory,
    corrupt,
)
from simulators.keyring import KeyRing

ROLE = "cti.a.p.acgw.endpoint.v1.0~vendor.app.endpoint.v1.0"
NOW = 1_710_852_007.0


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return KeyRing.open(tmp_path)


@pytest.fixture
def factory(ring: KeyRing) -> TokenFactory:
    return TokenFactory(ring.signing_key, clock=lambda: NOW)


def verify(ring: KeyRing, token: str) -> dict[str, object]:
    """A strict verifier: RS256 only, kid from the JWKS, the Acronis issuer, no leeway."""
    key = jwt.PyJWKSet.from_dict(ring.jwks())[jwt.get_unverified_header(token)["kid"]].key
    return jwt.decode(  # type: ignore[no-any-return]
        token, key, algorithms=["RS256"], issuer=ISSUER, audience=AUDIENCE, options={"verify_exp": False}
    )


def test_a_valid_token_has_the_documented_header_and_claims(ring: KeyRing, factory: TokenFactory) -> None:
    token = factory.valid(ROLE)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"] == ring.signing_key().kid and "iri" in header
    claims = verify(ring, token)
    assert set(claims) == {"aud", "exp", "jti", "iat", "iss", "sub", "scope", "ver", "sub_type"}
    assert claims["iat"] == int(NOW) and claims["exp"] == int(NOW) + LIFETIME
    assert (
        claims["scope"] == [{"role": ROLE}] and claims["ver"] == 2 and claims["sub_type"] == "platform-acgw"
    )


def test_a_valid_token_is_reused_until_near_expiry_then_renewed(ring: KeyRing) -> None:
    now = [NOW]
    factory = TokenFactory(ring.signing_key, clock=lambda: now[0])
    first = factory.valid(ROLE)
    assert factory.valid(ROLE) == first and factory.valid(ROLE + "x") != first
    now[0] += LIFETIME - 30
    assert factory.valid(ROLE) != first


def test_a_rotation_is_used_for_the_next_new_token(ring: KeyRing) -> None:
    factory = TokenFactory(ring.signing_key)
    before = jwt.get_unverified_header(factory.valid(ROLE))["kid"]
    new = ring.rotate().kid
    assert jwt.get_unverified_header(factory.token("other-app", ROLE) or "")["kid"] == new != before


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("corrupt", jwt.InvalidSignatureError),
        ("wrong-issuer", jwt.InvalidIssuerError),
        ("alg-none", jwt.InvalidAlgorithmError),
        ("hs256", jwt.InvalidAlgorithmError),
        ("unknown-kid", KeyError),
    ],
)
def test_broken_kinds_fail_a_strict_verifier(
    ring: KeyRing, factory: TokenFactory, kind: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        verify(ring, factory.token(kind, ROLE) or "")


def test_expired_is_beyond_any_leeway(ring: KeyRing, factory: TokenFactory) -> None:
    token = factory.token("expired", ROLE) or ""
    key = jwt.PyJWKSet.from_dict(ring.jwks())[jwt.get_unverified_header(token)["kid"]].key
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, key, algorithms=["RS256"], audience=AUDIENCE, leeway=600)


def test_other_app_verifies_but_names_another_endpoint(ring: KeyRing, factory: TokenFactory) -> None:
    assert verify(ring, factory.token("other-app", ROLE) or "")["scope"] == [{"role": OTHER_APP_ENDPOINT}]


def test_hs256_is_keyed_with_the_public_key(ring: KeyRing, factory: TokenFactory) -> None:
    """What a verifier that lets the token choose the algorithm would accept (CVE-2022-29217's class)."""
    token = factory.token("hs256", ROLE) or ""
    signing_input, _, signature = token.rpartition(".")
    expected = hmac.new(ring.signing_key().public_pem(), signing_input.encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)) == expected


def test_missing_is_none_and_unknown_kinds_are_refused(factory: TokenFactory) -> None:
    assert factory.token("missing", ROLE) is None
    assert set(TOKEN_KINDS) >= {"valid", "missing", "corrupt", "other-app"}
    with pytest.raises(ValueError, match="unknown token kind"):
        factory.token("forged", ROLE)


def test_corrupt_keeps_the_token_well_formed(factory: TokenFactory) -> None:
    token = factory.valid(ROLE)
    broken = corrupt(token)
    assert broken != token and broken.split(".")[:2] == token.split(".")[:2]
    assert json.loads(base64.urlsafe_b64decode(broken.split(".")[0] + "=="))["alg"] == "RS256"
