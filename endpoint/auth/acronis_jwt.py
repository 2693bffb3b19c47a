"""The Acronis API Callback Gateway's Bearer JWT: a transport stage, and its binding to the body's endpoint.

On the headers alone, before a byte of the body is read (acronis-callbacks.md §3 and §7, with our rules):
the token is a compact JWS whose header says RS256 -- never ``none``, never an HMAC keyed with the public
key (algorithm confusion: PyJWT gets an explicit ``algorithms`` list *and* an RSA key object) -- and names
a ``kid`` the key store holds; the signature verifies; ``iss`` is a configured issuer; ``exp`` is present
and not past by more than ``leeway`` seconds; ``scope`` is a list of ``{"role": ...}``. ``aud`` is logged,
not enforced (Acronis documents no fixed value), and so is ``jti``. ``jti`` is no nonce: the gateway reuses
a token for its hour, so a repeated request is the request ledger's business (§10), not a 401.

An unknown ``kid`` asks the key store for a refetch (at most one a minute, off the request path) and is
answered 401; before the first JWKS fetch succeeded the answer is 503 with Retry-After.

Once the envelope is parsed, ``bind_endpoint`` requires the body's ``context.endpoint_id`` to be one of
``acronis_jwt.endpoint_ids`` and one of the token's scope roles (otherwise the token was issued for another
CyberApp: 401). That endpoint id is then the ledger principal of the request (§10); until then the
consumer's key is ``PRINCIPAL``. The token itself is never logged or kept.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
from typing import Any

import jwt

from endpoint.auth.identity import VerifiedConsumer
from endpoint.auth.jwks import JwksKeyStore
from endpoint.auth.jwt_settings import AcronisJwtSettings
from endpoint.auth.oauth import InboundRequest
from endpoint.errors import AuthenticationFailed, Unavailable

PRINCIPAL = "acronis-gateway"  # the consumer's key until bind_endpoint names the endpoint id
ALGORITHMS = ["RS256"]
MAX_ROLES = 64
_AUDIT_MAX = 128  # characters of jti / aud on the log line
# RFC 7515 compact serialization: three base64url segments (the signature may be empty only for "none").
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class AcronisJwtStage:
    """Verifies the gateway's token; pure CPU on the IOLoop (the key store fetches on its own thread)."""

    scheme = "bearer"

    def __init__(self, settings: AcronisJwtSettings, keys: JwksKeyStore) -> None:
        self._settings = settings
        self._keys = keys
        self._issuers = frozenset(settings.issuers)
        self._options: Any = {"require": ["exp", "iss"], "verify_aud": False}

    def verify(self, request: InboundRequest) -> VerifiedConsumer:
        """:raise AuthenticationFailed: missing, malformed, forged, expired or foreign token (401).
        :raise Unavailable: no keys yet to verify with (503).
        """
        _, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if not _COMPACT_JWS.fullmatch(token):
            raise AuthenticationFailed(reason="Bearer credentials are not a compact JWT")
        header = _header(token)
        if header.get("alg") != "RS256":  # checked again by decode(); said here for the log's sake
            raise AuthenticationFailed(reason="token alg is not RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationFailed(reason="token header has no kid")
        key = self._keys.get(kid)
        if key is None:
            if not self._keys.ready:
                raise Unavailable(
                    reason="gateway token, but no JWKS fetched yet", retry_after=self._keys.retry_after()
                )
            self._keys.request_refetch()  # rate-limited; this request is refused either way
            raise AuthenticationFailed(reason="token kid not in the JWKS")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                issuer=self._issuers,
                leeway=self._settings.leeway,
                options=self._options,
            )
        except jwt.ExpiredSignatureError as e:
            raise AuthenticationFailed(reason="token expired") from e
        except jwt.InvalidIssuerError as e:
            raise AuthenticationFailed(reason="token issuer not accepted") from e
        except jwt.InvalidSignatureError as e:
            raise AuthenticationFailed(reason="token signature does not verify") from e
        except jwt.MissingRequiredClaimError as e:
            raise AuthenticationFailed(reason=f"token without {e.claim}") from e
        except jwt.InvalidTokenError as e:
            raise AuthenticationFailed(reason=f"token rejected ({type(e).__name__})") from e
        return VerifiedConsumer(
            key=PRINCIPAL, secret_id=0, scope_roles=_scope_roles(claims.get("scope")), audit=_audit(claims)
        )

    def check_body(self, consumer: VerifiedConsumer, body: bytes, content_type: str) -> None:
        """The token binds nothing to the body; its scope is matched by ``bind_endpoint``."""


def _header(token: str) -> dict[str, Any]:
    """The JOSE header, only to pick the key (decode() then checks the whole token again).

    Read here rather than with ``jwt.get_unverified_header``: PyJWT vets each segment's alphabet one
    character at a time in Python, and a second pass over the token cost ~60 us a request; the
    regular expression above has already vetted it.
    :raise AuthenticationFailed: not base64url of a JSON object.
    """
    segment = token.partition(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error) as e:  # UnicodeDecodeError and JSONDecodeError included
        raise AuthenticationFailed(reason="token header unreadable") from e
    if not isinstance(header, dict):
        raise AuthenticationFailed(reason="token header unreadable")
    return header


def _scope_roles(scope: Any) -> tuple[str, ...]:
    """:raise AuthenticationFailed: ``scope`` is not a list of {"role": str} objects."""
    if not isinstance(scope, list) or len(scope) > MAX_ROLES:
        raise AuthenticationFailed(reason="token scope is not a list of roles")
    roles = [item.get("role") if isinstance(item, dict) else None for item in scope]
    if not all(isinstance(role, str) for role in roles):
        raise AuthenticationFailed(reason="token scope is not a list of roles")
    return tuple(roles)


def _audit(claims: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    fields = []
    jti, aud = claims.get("jti"), claims.get("aud")
    if isinstance(jti, str):
        fields.append(("jti", jti[:_AUDIT_MAX]))
    if isinstance(aud, list):
        aud = ",".join(str(item) for item in aud)
    if isinstance(aud, str):
        fields.append(("aud", aud[:_AUDIT_MAX]))
    return tuple(fields)


def bind_endpoint(
    consumer: VerifiedConsumer, endpoint_id: str, settings: AcronisJwtSettings
) -> VerifiedConsumer:
    """The request's consumer once the envelope is parsed (§7 step 4); OAuth consumers pass unchanged.

    A gateway token must list ``endpoint_id`` (the body's ``context.endpoint_id``) among its scope roles,
    and the id must be one of this CyberApp's; the returned consumer's key (the ledger principal) is it.
    :raise AuthenticationFailed: an endpoint of another CyberApp, or a token issued for one (401).
    """
    if consumer.scope_roles is None:
        return consumer
    if endpoint_id not in settings.endpoint_ids:
        raise AuthenticationFailed(reason="context.endpoint_id is not one of acronis_jwt.endpoint_ids")
    if endpoint_id not in consumer.scope_roles:
        raise AuthenticationFailed(reason="token scope does not name context.endpoint_id")
    return dataclasses.replace(consumer, key=endpoint_id)
