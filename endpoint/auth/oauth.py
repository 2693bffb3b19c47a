"""OAuth 1.0 two-legged signature verification of inbound requests, on the headers alone.

What the signature covers: the method, the public URL the controller called (rebuilt from
configuration: ``public_base_url`` + the raw request URI below ``mount_path``, never the Host or
X-Forwarded-* headers), the query string and the oauth_* parameters. JSON bodies are NOT signed
(RFC 5849 signs form bodies only): ``oauth_body_hash`` is checked when present and required only when
``require_body_hash`` is set, because the controller never sends it. That check waits for the body;
everything else runs before a byte of the body is read.

Order (aps.md §2.4): strict parameter checks -> freshness -> signature against each active secret of the
in-process snapshot (unknown keys go through a dummy secret so timing stays flat) -> in-process replay
claim. The nonce reaches the database in the request's unit of work (endpoint/auth/nonces.py).

oauthlib's signature primitives build the base string (RFC 5849 §3.4.1) once per request; the HMAC then
runs once per candidate secret. A ``SignatureOnlyEndpoint`` per secret per request cost ~9 % of a request.
The parameters are normalized as oauthlib's ``normalize_parameters`` and ``signature_base_string`` do,
with its percent-encoding, except that a value made of unreserved characters only (nearly every one:
keys, nonces, timestamps, methods) is taken as it is instead of going through urllib's quote (~4 % of a
request); tests/endpoint/auth/test_oauth.py compares the two on random input.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from oauthlib.common import urldecode
from oauthlib.oauth1.rfc5849 import signature, utils

from endpoint.auth.consumers import ConsumerSecrets
from endpoint.auth.identity import VerifiedConsumer
from endpoint.auth.nonces import RecentNonces
from endpoint.auth.oauth_params import (
    OAuthParameters,
    check_freshness,
    parse_authorization,
    reject_oauth_query_parameters,
)
from endpoint.config.sections import EndpointSettings
from endpoint.errors import AuthenticationFailed, PayloadError

log = logging.getLogger(__name__)

_DUMMY_SECRET = "dummy-secret-" + "0" * 43  # same length class as real secrets
_SIGNERS = {"HMAC-SHA1": "SHA-1", "HMAC-SHA256": "SHA-256"}


_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*")  # RFC 5849 §3.6: left as they are
_NORMALIZED = re.compile(r"[A-Za-z0-9._~%=&-]*")  # encoded pairs joined by "=" and "&"


def percent_encode(value: str) -> str:
    """RFC 5849 §3.6, as oauthlib's ``utils.escape``; unreserved-only values skip urllib's quote."""
    return value if _UNRESERVED.fullmatch(value) else utils.escape(value)


def _encode_normalized(normalized: str) -> str:
    """``percent_encode`` of the normalized parameters: made of encoded pairs, so only "%", "=" and "&"
    need encoding (the first first, or it would encode the others' escapes again)."""
    if not _NORMALIZED.fullmatch(normalized):
        return utils.escape(normalized)
    return normalized.replace("%", "%25").replace("=", "%3D").replace("&", "%26")


# A route's signed URI repeats on every request; oauthlib's normalization and encoding of it cost ~10 us.
# Bounded, and keyed by the exact URI, so a miss only costs the normal computation.
@functools.lru_cache(maxsize=1024)
def _encoded_uri(uri: str) -> str:
    return utils.escape(signature.base_string_uri(uri))


def base_string(method: str, uri: str, pairs: list[tuple[str, str]]) -> str:
    """RFC 5849 §3.4.1: oauthlib's ``signature_base_string(method, base_string_uri(uri),
    normalize_parameters(pairs))`` with ``percent_encode``."""
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in pairs)
    normalized = "&".join([f"{k}={v}" for k, v in encoded])
    return f"{percent_encode(method.upper())}&{_encoded_uri(uri)}&{_encode_normalized(normalized)}"


@dataclass(frozen=True, slots=True)
class InboundRequest:
    method: str
    uri: str  # raw request-target exactly as received (percent-encoding untouched)
    headers: Mapping[str, str]


class SignatureVerifier:
    """Verifies one request's OAuth 1.0 signature; pure CPU, no I/O (the IOLoop runs it in prepare())."""

    scheme = "oauth"

    def __init__(self, settings: EndpointSettings, secrets: ConsumerSecrets, recent: RecentNonces) -> None:
        settings.require_public_url()
        self._settings = settings
        self._secrets = secrets
        self._recent = recent
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
        :raise AuthenticationFailed: bad, stale or replayed signature, or an unknown consumer (401).
        """
        settings = self._settings
        params = parse_authorization(request.headers.get("Authorization"), settings.signature_methods)
        reject_oauth_query_parameters(request.uri)
        check_freshness(params.timestamp, settings.timestamp_window)
        base_string = self._base_string(request.method, self.signed_uri(request.uri), params)
        secrets = self._secrets.active(params.consumer_key)
        algorithm = _SIGNERS[params.signature_method]
        matched = None
        # Every candidate is computed (no early exit), and an unknown key costs one dummy HMAC.
        for secret_id, secret in secrets or [(0, _DUMMY_SECRET)]:
            expected = signature._sign_hmac(algorithm, base_string, secret, "")
            if hmac.compare_digest(expected.encode(), params.signature.encode()) and matched is None:
                matched = secret_id
        if not secrets:
            raise AuthenticationFailed(reason="unknown consumer")
        if matched is None:
            raise AuthenticationFailed(reason="signature mismatch")
        if not self._recent.claim(params.consumer_key, params.nonce):
            raise AuthenticationFailed(reason="nonce already used (replay)")
        return VerifiedConsumer(
            key=params.consumer_key,
            secret_id=matched,
            nonce=params.nonce,
            timestamp=params.timestamp,
            body_hash=params.body_hash,
            signature_method=params.signature_method,
        )

    def _base_string(self, method: str, uri: str, params: OAuthParameters) -> str:
        """RFC 5849 §3.4.1 with oauthlib's primitives: query + protocol parameters, normalized."""
        try:
            return base_string(method, uri, [*urldecode(urlsplit(uri).query), *params.signed_pairs])
        except (ValueError, UnicodeError) as e:
            raise PayloadError(reason=f"request rejected by the OAuth parser ({type(e).__name__})") from e

    def check_body(self, consumer: VerifiedConsumer, body: bytes, content_type: str) -> None:
        """``oauth_body_hash`` against the body that arrived (or its absence against the setting).

        :raise AuthenticationFailed: missing when required, or not matching (401).
        :raise PayloadError: sent with a form body, where RFC 5849 signs the body itself (400).
        """
        if consumer.body_hash is None:
            if self._settings.require_body_hash:
                raise AuthenticationFailed(reason="oauth_body_hash required but absent")
            return
        if "application/x-www-form-urlencoded" in content_type.lower():
            raise PayloadError(reason="oauth_body_hash sent with a form body")
        # oauthlib clients always use SHA-1 (even for HMAC-SHA256); the draft uses the signature
        # method's hash, so HMAC-SHA256 also accepts SHA-256.
        algorithms = ["sha1"] + (["sha256"] if consumer.signature_method == "HMAC-SHA256" else [])
        claimed = consumer.body_hash.encode("ascii", "replace")
        ok = False
        for name in algorithms:
            expected = base64.b64encode(hashlib.new(name, body).digest())
            ok |= hmac.compare_digest(expected, claimed)
        if not ok:
            raise AuthenticationFailed(reason="oauth_body_hash does not match the body")
