"""How the simulated controller checks the connector's callbacks: an independent OAuth 1.0 verification.

Independent of endpoint/oauth.py on purpose: its own oauthlib validator, the URL rebuilt from the
controller's public base URL (the APS-Controller-URI the connector was given) plus the raw request
target, HMAC-SHA1 only, no token, no oauth_body_hash (the controller's callers never send one), and a
replay check on (key, nonce).
"""

from __future__ import annotations

import string
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from oauthlib.oauth1 import RequestValidator, SignatureOnlyEndpoint
from oauthlib.oauth1.rfc5849 import utils

_SAFE = frozenset(string.ascii_letters + string.digits + "-")
_DUMMY = "dummy-client-key-000"


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    key: str | None
    reason: str


class _Validator(RequestValidator):  # type: ignore[misc]
    def __init__(self, secrets: Mapping[str, str]) -> None:
        super().__init__()
        self._secrets = secrets

    @property
    def allowed_signature_methods(self) -> tuple[str, ...]:
        return ("HMAC-SHA1",)

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
        return False  # the public base decides the scheme; development controllers run plain http

    @property
    def dummy_client(self) -> str:
        return _DUMMY

    def validate_client_key(self, client_key: str, request: object) -> bool:
        return client_key in self._secrets

    def get_client_secret(self, client_key: str, request: object) -> str:
        return self._secrets.get(client_key, "dummy-secret")

    def validate_timestamp_and_nonce(self, *args: object, **kwargs: object) -> bool:
        return True  # replays are checked after the signature (Verifier.verify)


class Verifier:
    """Thread-safe verification of requests signed with one of the known instance keys."""

    def __init__(self, public_base: str) -> None:
        self.public_base = public_base.rstrip("/")
        self._secrets: dict[str, str] = {}
        self._nonces: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def trust(self, key: str, secret: str) -> None:
        """The controller learns (or re-learns, after a rotation) an instance's key and secret."""
        with self._lock:
            self._secrets[key] = secret

    def forget(self, key: str) -> None:
        with self._lock:
            self._secrets.pop(key, None)

    def verify(self, method: str, raw_target: str, authorization: str | None) -> Verdict:
        if not authorization or not authorization.lower().startswith("oauth "):
            return Verdict(False, None, "no OAuth Authorization header")
        try:
            params = dict(utils.parse_authorization_header(authorization))
        except (ValueError, IndexError) as e:
            return Verdict(False, None, f"unparsable Authorization ({type(e).__name__})")
        key = params.get("oauth_consumer_key")
        if "oauth_body_hash" in params:
            return Verdict(False, key, "oauth_body_hash present (the controller's callers never send one)")
        if "oauth_token" in params:
            return Verdict(False, key, "oauth_token present (two-legged OAuth has no token)")
        with self._lock:
            secrets = dict(self._secrets)
        endpoint = SignatureOnlyEndpoint(_Validator(secrets))
        uri = self.public_base + raw_target
        try:
            valid, request = endpoint.validate_request(uri, method, None, {"Authorization": authorization})
        except (ValueError, TypeError, KeyError, NotImplementedError) as e:
            return Verdict(False, key, f"rejected by oauthlib ({type(e).__name__})")
        if not valid:
            failed = ", ".join(name for name, passed in request.validator_log.items() if not passed)
            return Verdict(
                False,
                key,
                f"signature not valid for {uri} ({failed})",
            )
        nonce = params.get("oauth_nonce", "")
        with self._lock:
            if (str(key), nonce) in self._nonces:
                return Verdict(False, key, "nonce replayed")
            self._nonces.add((str(key), nonce))
        return Verdict(True, key, "verified")
