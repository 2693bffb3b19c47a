"""``[acronis_jwt]``: how the Acronis gateway's Bearer JWT is verified (endpoint/auth/acronis_jwt.py)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

# The schemes ``endpoint.callback_auth`` may list: the controller's OAuth 1.0 signature, the gateway's JWT.
CALLBACK_AUTH = ("oauth1", "acronis_jwt")
# The two endpoint forms the gateway names in ``context.endpoint_id`` and in the token's scope roles.
ENDPOINT_ID_PREFIXES = ("cti.a.p.acgw.endpoint.v1.0~", "cti.a.p.acgw.endpoint.v1.1~")
MAX_LEEWAY = 60  # seconds of exp tolerance; more would stretch a leaked token's life
MAX_ENDPOINT_ID = 200  # the ledger keys on the endpoint id (255 characters at most)


@dataclass(frozen=True, slots=True)
class AcronisJwtSettings:
    """Used only when ``endpoint.callback_auth`` lists ``acronis_jwt``."""

    # The identity provider's public keys; fetched through [proxy] like every outbound call.
    jwks_url: str = "https://acronis.cloud/api/idp/v1/keys"
    issuers: tuple[str, ...] = ("https://acronis.cloud",)
    # This CyberApp's endpoint ids: a token's scope role and the body's context.endpoint_id must both be
    # one of them. Required when the scheme is on (Settings checks it).
    endpoint_ids: tuple[str, ...] = ()
    leeway: int = 60  # seconds a token is still accepted after its exp (clock skew)
    refresh_interval: float = 3600.0  # seconds between JWKS fetches while they succeed

    def __post_init__(self) -> None:
        parts = urlsplit(self.jwks_url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("jwks_url: must be an absolute https:// URL")
        if parts.username or parts.password or parts.fragment:
            raise ValueError("jwks_url: must not carry credentials or a fragment")
        if not self.issuers or any(not issuer.strip() for issuer in self.issuers):
            raise ValueError("issuers: at least one, none empty")
        for endpoint_id in self.endpoint_ids:
            prefix = next((p for p in ENDPOINT_ID_PREFIXES if endpoint_id.startswith(p)), None)
            if prefix is None or len(endpoint_id) == len(prefix) or not endpoint_id.isprintable():
                raise ValueError(
                    f"endpoint_ids: {endpoint_id[:80]!r} is not an endpoint id "
                    f"({' or '.join(p + '<app endpoint>' for p in ENDPOINT_ID_PREFIXES)})"
                )
            if len(endpoint_id) > MAX_ENDPOINT_ID or " " in endpoint_id:
                raise ValueError(f"endpoint_ids: {endpoint_id[:80]!r} is too long or has a space")
        if not 0 <= self.leeway <= MAX_LEEWAY:
            raise ValueError(f"leeway: must be 0..{MAX_LEEWAY} seconds")
        if not 60 <= self.refresh_interval <= 86400:
            raise ValueError("refresh_interval: must be 60..86400 seconds")


def callback_auth_error(schemes: tuple[str, ...]) -> str | None:
    """What is wrong with ``endpoint.callback_auth``, as ``callback_auth: reason``; else None."""
    if not schemes or len(set(schemes)) < len(schemes) or not set(schemes) <= set(CALLBACK_AUTH):
        return f"callback_auth: one or both of {', '.join(CALLBACK_AUTH)}, each once"
    return None


def check_callback_auth(callback_auth: tuple[str, ...], jwt: AcronisJwtSettings) -> str | None:
    """What is wrong with the pair (endpoint.callback_auth, [acronis_jwt]), as ``key: reason``; else None."""
    if "acronis_jwt" in callback_auth and not jwt.endpoint_ids:
        return "acronis_jwt.endpoint_ids: required when endpoint.callback_auth lists acronis_jwt"
    return None
