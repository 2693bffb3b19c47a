"""The gateway JWT stage on the headers, and bind_endpoint once the envelope names the endpoint."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from endpoint.auth.acronis_jwt import PRINCIPAL, AcronisJwtStage, bind_endpoint
from endpoint.auth.identity import VerifiedConsumer
from endpoint.auth.jwks import JwksKeyStore
from endpoint.auth.jwt_settings import AcronisJwtSettings
from endpoint.auth.oauth import InboundRequest
from endpoint.errors import AuthenticationFailed, Unavailable
from proxy.errors import TransportError
from tests.endpoint.auth.test_jwks import Clock, Inline, Source
from tests.support.gateway_tokens import (
    OTHER_ENDPOINT,
    b64_json,
    claims,
    corrupt,
    hs256_with_public_key,
    jwks,
    kid_of,
    public_jwk,
    rsa_key,
    token,
    unsigned,
)
from tests.support.live_endpoint import ENDPOINT_ID

V11_ENDPOINT = "cti.a.p.acgw.endpoint.v1.1~vendor.app.endpoint.v1.1"
SETTINGS = AcronisJwtSettings(endpoint_ids=(ENDPOINT_ID, V11_ENDPOINT))


@pytest.fixture
def source() -> Source:
    return Source(jwks(public_jwk(0), public_jwk(1)))


@pytest.fixture
def store(source: Source) -> JwksKeyStore:
    store = JwksKeyStore(source, 3600, clock=Clock(), executor=Inline())
    store.refresh()
    return store


@pytest.fixture
def stage(store: JwksKeyStore) -> AcronisJwtStage:
    return AcronisJwtStage(SETTINGS, store)


def bearer(value: str) -> InboundRequest:
    return InboundRequest("POST", "/callback", {"Authorization": value})


def test_a_valid_token_verifies(stage: AcronisJwtStage) -> None:
    payload = claims()
    consumer = stage.verify(bearer("Bearer " + token(payload)))
    assert consumer.key == PRINCIPAL and consumer.nonce is None  # no nonce: nothing recorded per request
    assert consumer.scope_roles == (ENDPOINT_ID,)
    assert dict(consumer.audit) == {"jti": payload["jti"], "aud": "acronis.cloud"}
    assert stage.scheme == "bearer"


def test_any_listed_key_verifies_and_the_same_token_twice_is_fine(stage: AcronisJwtStage) -> None:
    value = "Bearer " + token(index=1)
    assert stage.verify(bearer(value)).scope_roles == (ENDPOINT_ID,)
    assert stage.verify(bearer(value)).scope_roles == (ENDPOINT_ID,)  # the gateway reuses its tokens


def test_several_roles_and_a_list_audience() -> None:
    store = JwksKeyStore(Source(), 3600, executor=Inline())
    store.refresh()
    scope = [{"role": OTHER_ENDPOINT}, {"role": V11_ENDPOINT, "extra": 1}]
    consumer = AcronisJwtStage(SETTINGS, store).verify(
        bearer("Bearer " + token(claims(scope=scope, aud=["a", "b"], jti=None)))
    )
    assert consumer.scope_roles == (OTHER_ENDPOINT, V11_ENDPOINT) and consumer.audit == (("aud", "a,b"),)


def now_minus(seconds: int) -> int:
    return int(time.time()) - seconds


def with_header(**header: Any) -> str:
    """A token whose header is ``header`` (its signature is made up)."""
    head, body, _ = token().split(".")
    return f"{b64_json(header)}.{body}.{'A' * 342}"


def rs512() -> str:
    return jwt.encode(claims(), rsa_key(0), algorithm="RS512", headers={"kid": kid_of(0)})


REFUSED: list[tuple[str, Any, str]] = [
    ("empty", lambda: "Bearer", "not a compact JWT"),
    ("two parts", lambda: "Bearer abc.def", "not a compact JWT"),
    ("junk", lambda: "Bearer a.b.c", "header unreadable"),
    ("header not an object", lambda: "Bearer " + b64_json([1]) + ".e30.AAAA", "header unreadable"),  # type: ignore[arg-type]
    ("corrupted signature", lambda: "Bearer " + corrupt(token()), "signature does not verify"),
    ("alg none", lambda: "Bearer " + unsigned(), "alg is not RS256"),
    ("HS256 keyed with the public key", lambda: "Bearer " + hs256_with_public_key(), "alg is not RS256"),
    ("RS512", lambda: "Bearer " + rs512(), "alg is not RS256"),
    ("wrong issuer", lambda: "Bearer " + token(claims(iss="https://idp.attacker.example")), "issuer"),
    (
        "old issuer not configured",
        lambda: "Bearer " + token(claims(iss="https://cloud.acronis.com")),
        "issuer",
    ),
    ("no issuer", lambda: "Bearer " + token(claims(iss=None)), "without iss"),
    ("expired beyond leeway", lambda: "Bearer " + token(claims(exp=now_minus(61))), "expired"),
    ("no exp", lambda: "Bearer " + token(claims(exp=None)), "without exp"),
    ("issued in the future", lambda: "Bearer " + token(claims(iat=now_minus(-600))), "ImmatureSignature"),
    ("not yet valid", lambda: "Bearer " + token(claims(nbf=now_minus(-600))), "ImmatureSignature"),
    ("scope not a list", lambda: "Bearer " + token(claims(scope=ENDPOINT_ID)), "scope"),
    ("scope without role", lambda: "Bearer " + token(claims(scope=[{"name": ENDPOINT_ID}])), "scope"),
    ("no scope", lambda: "Bearer " + token(claims(scope=None)), "scope"),
    ("kid not a string", lambda: "Bearer " + with_header(alg="RS256", kid=7), "has no kid"),
    ("no kid", lambda: "Bearer " + with_header(alg="RS256"), "has no kid"),
    ("unknown kid", lambda: "Bearer " + token(kid="kid-nobody-published"), "kid not in the JWKS"),
]


@pytest.mark.parametrize(("case", "make", "reason"), REFUSED, ids=[case for case, _, _ in REFUSED])
def test_refused_tokens_are_401_with_a_reason_but_never_the_token(
    stage: AcronisJwtStage, case: str, make: Any, reason: str
) -> None:
    value = make()
    with pytest.raises(AuthenticationFailed) as caught:
        stage.verify(bearer(value))
    assert reason in (caught.value.reason or "")
    assert caught.value.message == "Authentication failed."
    secret_part = value.partition(" ")[2]
    assert not secret_part or secret_part not in str(caught.value.reason)


def test_exp_within_the_leeway_is_accepted_and_leeway_is_configurable(store: JwksKeyStore) -> None:
    late = "Bearer " + token(claims(exp=now_minus(30)))
    assert AcronisJwtStage(SETTINGS, store).verify(bearer(late)).scope_roles == (ENDPOINT_ID,)
    strict = AcronisJwtSettings(endpoint_ids=(ENDPOINT_ID,), leeway=0)
    with pytest.raises(AuthenticationFailed, match="expired"):
        AcronisJwtStage(strict, store).verify(bearer(late))


def test_issuers_come_from_the_settings(store: JwksKeyStore) -> None:
    both = AcronisJwtSettings(
        endpoint_ids=(ENDPOINT_ID,), issuers=("https://acronis.cloud", "https://cloud.acronis.com")
    )
    older = "Bearer " + token(claims(iss="https://cloud.acronis.com"))
    assert AcronisJwtStage(both, store).verify(bearer(older)).key == PRINCIPAL


def test_an_unknown_kid_asks_for_a_refetch_then_verifies_once_published(
    stage: AcronisJwtStage, store: JwksKeyStore, source: Source
) -> None:
    value = "Bearer " + token(index=3)
    source.document = jwks(public_jwk(0), public_jwk(3))  # rotated at the identity provider
    with pytest.raises(AuthenticationFailed, match="kid not in the JWKS"):
        stage.verify(bearer(value))  # refused; the refetch it asked for ran (inline here)
    assert source.calls == 2
    assert stage.verify(bearer(value)).key == PRINCIPAL


def test_no_keys_yet_is_503_with_retry_after(source: Source) -> None:
    source.error = TransportError("JWKS acronis.cloud: ConnectionError")
    store = JwksKeyStore(source, 3600, clock=Clock(), executor=Inline())
    store.refresh_soon()
    with pytest.raises(Unavailable) as caught:
        AcronisJwtStage(SETTINGS, store).verify(bearer("Bearer " + token()))
    assert caught.value.retry_after == 60.0
    with pytest.raises(AuthenticationFailed):  # a malformed token is still just refused
        AcronisJwtStage(SETTINGS, store).verify(bearer("Bearer " + unsigned()))


def test_the_body_is_not_bound(stage: AcronisJwtStage) -> None:
    consumer = stage.verify(bearer("Bearer " + token()))
    stage.check_body(consumer, b"{}", "application/json")  # nothing to check, nothing raised


# -- bind_endpoint ----------------------------------------------------------------------------------
def gateway_consumer(*roles: str) -> VerifiedConsumer:
    return VerifiedConsumer(key=PRINCIPAL, secret_id=0, scope_roles=roles)


@pytest.mark.parametrize("endpoint_id", [ENDPOINT_ID, V11_ENDPOINT])
def test_the_endpoint_id_in_scope_and_configured_becomes_the_principal(endpoint_id: str) -> None:
    bound = bind_endpoint(gateway_consumer(OTHER_ENDPOINT, endpoint_id), endpoint_id, SETTINGS)
    assert bound.key == endpoint_id and bound.scope_roles == (OTHER_ENDPOINT, endpoint_id)


def test_a_token_for_another_cyberapp_is_refused() -> None:
    with pytest.raises(AuthenticationFailed, match="scope does not name"):
        bind_endpoint(gateway_consumer(OTHER_ENDPOINT), ENDPOINT_ID, SETTINGS)


def test_an_endpoint_id_not_configured_is_refused_even_when_in_scope() -> None:
    with pytest.raises(AuthenticationFailed, match="not one of acronis_jwt.endpoint_ids"):
        bind_endpoint(gateway_consumer(OTHER_ENDPOINT), OTHER_ENDPOINT, SETTINGS)


def test_oauth_consumers_pass_unchanged() -> None:
    consumer = VerifiedConsumer(key="acme-key", secret_id=1, nonce="n")
    assert bind_endpoint(consumer, OTHER_ENDPOINT, SETTINGS) is consumer
