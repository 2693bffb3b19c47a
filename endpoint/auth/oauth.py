"""OAuth 1.0 two-legged signature verification of inbound requests (oauthlib SignatureOnlyEndpoint).

What the signature covers: the method, the public URL the controller called (rebuilt from
configuration: ``public_base_url`` + the raw request URI below ``mount_path``, never the Host or
X-Forwarded-* headers), the query string and the oauth_* parameters. JSON bodies are NOT signed
(RFC 5849 signs form bodies only, and oauthlib ignores others): ``oauth_body_hash`` is checked when
present and required only when ``require_body_hash`` is set, because the controller never sends it.

Order (aps.md §2.4): strict parameter checks -> freshness -> signature against each active secret
(unknown keys go through a dummy client so timing stays flat) -> body hash -> the nonce is recorded
only now, atomically, so unauthenticated traffic never fills the store and a replay gets 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import string
from collections.abc import Mapping
from dataclasses import dataclass

from oauthlib.oauth1 import RequestValidator, SignatureOnlyEndpoint

from endpoint.auth.identity import VerifiedConsumer
from endpoint.auth.oauth_params import (
    OAuthParameters,
    check_freshness,
    parse_authorization,
    reject_oauth_query_parameters,
)
from endpoint.errors import AuthenticationFailed, PayloadError
from endpoint.settings import EndpointSettings
from models import Consumer, Nonce
from models.db import utcnow

log = logging.getLogger(__name__)

_DUMMY_KEY = "dummy-consumer-key-0000"
_DUMMY_SECRET = "dummy-secret-" + "0" * 43  # same length class as real secrets
_SAFE = frozenset(string.ascii_letters + string.digits + "-")
# Nonces stay recorded this long past the window, covering clock drift between instances.
NONCE_RETENTION_MARGIN = 60


@dataclass(frozen=True, slots=True)
class InboundRequest:
    method: str
    uri: str  # raw request-target exactly as received (percent-encoding untouched)
    headers: Mapping[str, str]
    body: bytes


class _Validator(RequestValidator):  # type: ignore[misc]
    """Serves exactly what SignatureOnlyEndpoint calls, for one candidate secret."""

    def __init__(self, settings: EndpointSettings, secret: str | None) -> None:
        super().__init__()
        self._settings = settings
        self._secret = secret

    @property
    def allowed_signature_methods(self) -> tuple[str, ...]:
        return self._settings.signature_methods

    @property
    def timestamp_lifetime(self) -> int:
        return self._settings.timestamp_window

    @property
    def safe_characters(self) -> frozenset[str]:
        return _SAFE

    @property
    def client_key_length(self) -> tuple[int, int]:
        return (8, 128)

    @property
    def nonce_length(self) -> tuple[int, int]:
        return (8, 64)

    @property
    def enforce_ssl(self) -> bool:
        return not self._settings.allow_plain_http

    @property
    def dummy_client(self) -> str:
        return _DUMMY_KEY

    def validate_client_key(self, client_key: str, request: object) -> bool:
        return self._secret is not None

    def get_client_secret(self, client_key: str, request: object) -> str:
        # The dummy branch costs the same HMAC as a real one (no early exit: client enumeration).
        return self._secret if self._secret is not None else _DUMMY_SECRET

    def validate_timestamp_and_nonce(
        self,
        client_key: str,
        timestamp: str,
        nonce: str,
        request: object,
        request_token: str | None = None,
        access_token: str | None = None,
    ) -> bool:
        # Freshness was checked before; the nonce is recorded only after the signature verified
        # (security-checklist §3): storing it here would let unsigned traffic fill the store.
        return True

    def get_access_token_secret(self, client_key: str, token: str, request: object) -> str:
        return _DUMMY_SECRET  # unreachable: oauth_token is rejected before oauthlib runs


class SignatureVerifier:
    """Verifies one request; ``verify`` is synchronous and runs inside a database unit of work."""

    def __init__(self, settings: EndpointSettings) -> None:
        settings.require_public_url()
        self._settings = settings
        self._mount = settings.mount_path.rstrip("/")
        self._public_base = settings.public_base

    def signed_uri(self, raw_uri: str) -> str:
        """The URL the controller signed: the public base + the raw URI below the mount path.

        :raise AuthenticationFailed: the request did not come through the public base.
        """
        if not raw_uri.startswith(self._mount + "/"):
            raise AuthenticationFailed(reason="request target outside the mount path")
        return self._public_base + raw_uri[len(self._mount) :]

    def verify(self, request: InboundRequest) -> VerifiedConsumer:
        """:raise PayloadError: malformed protocol input (400).
        :raise AuthenticationFailed: bad/stale/replayed signature or unknown consumer (401).
        """
        settings = self._settings
        params = parse_authorization(request.headers.get("Authorization"), settings.signature_methods)
        reject_oauth_query_parameters(request.uri)
        check_freshness(params.timestamp, settings.timestamp_window)
        uri = self.signed_uri(request.uri)
        secrets = Consumer.active_secrets(params.consumer_key, utcnow())
        candidates: list[tuple[int, str | None]] = list(secrets) or [(0, None)]
        matched = next((sid for sid, secret in candidates if self._check(request, uri, secret)), None)
        if matched is None or not secrets:
            raise AuthenticationFailed(reason="unknown consumer" if not secrets else "signature mismatch")
        self._check_body_hash(params, request)
        if not Nonce.record(params.consumer_key, params.nonce, params.timestamp):
            raise AuthenticationFailed(reason="nonce already used (replay)")
        log.debug("signature verified for consumer %s with secret #%s", params.consumer_key, matched)
        return VerifiedConsumer(key=params.consumer_key, secret_id=matched)

    def _check(self, request: InboundRequest, uri: str, secret: str | None) -> bool:
        endpoint = SignatureOnlyEndpoint(_Validator(self._settings, secret))
        # Only the header matters to oauthlib here: JSON bodies are not form-encoded, so they are not
        # part of the base string; passing an empty body keeps oauthlib from decoding untrusted bytes.
        headers = {"Authorization": request.headers.get("Authorization", "")}
        try:
            valid, oauth_request = endpoint.validate_request(uri, request.method, "", headers)
        except (ValueError, UnicodeError, TypeError, KeyError, IndexError, NotImplementedError) as e:
            # oauthlib raises on several malformed inputs (oauthlib#662): a 400, never a 500.
            raise PayloadError(reason=f"request rejected by the OAuth parser ({type(e).__name__})") from e
        if not valid and (oauth_request is None or "signature" not in oauth_request.validator_log):
            raise PayloadError(reason="OAuth request structure rejected")
        return bool(valid)

    def _check_body_hash(self, params: OAuthParameters, request: InboundRequest) -> None:
        if params.body_hash is None:
            if self._settings.require_body_hash:
                raise AuthenticationFailed(reason="oauth_body_hash required but absent")
            return
        content_type = request.headers.get("Content-Type", "")
        if "application/x-www-form-urlencoded" in content_type.lower():
            raise PayloadError(reason="oauth_body_hash sent with a form body")
        # oauthlib clients always use SHA-1 (even for HMAC-SHA256); the draft uses the signature
        # method's hash, so HMAC-SHA256 also accepts SHA-256.
        algorithms = ["sha1"] + (["sha256"] if params.signature_method == "HMAC-SHA256" else [])
        claimed = params.body_hash.encode("ascii", "replace")
        ok = False
        for name in algorithms:
            expected = base64.b64encode(hashlib.new(name, request.body).digest())
            ok |= hmac.compare_digest(expected, claimed)
        if not ok:
            raise AuthenticationFailed(reason="oauth_body_hash does not match the body")


def purge_nonces(window: int, now: int) -> int:
    """Delete nonces that can no longer be replayed (their timestamp left the window)."""
    return Nonce.purge(older_than=now - window - NONCE_RETENTION_MARGIN)
