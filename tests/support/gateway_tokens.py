"""The Acronis gateway's side, for tests and the benchmark: RSA keys, tokens (valid and broken), and a JWKS
served over TLS on a loopback port. Independent of the code under test, like the signer in builders.py."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.support.live_endpoint import ENDPOINT_ID

ISSUER = "https://acronis.cloud"
JWKS_PATH = "/api/idp/v1/keys"
OTHER_ENDPOINT = "cti.a.p.acgw.endpoint.v1.0~other.app.endpoint.v1.0"


@functools.cache
def rsa_key(index: int = 0, bits: int = 2048) -> rsa.RSAPrivateKey:
    """A private key per ``index``, generated once per process (generation costs ~50 ms)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def kid_of(index: int) -> str:
    return f"kid-{index}-c2618afb"


def public_jwk(index: int = 0, **fields: Any) -> dict[str, Any]:
    """The JWKS entry of key ``index`` as Acronis publishes it; ``fields`` override or add members."""
    jwk = RSAAlgorithm.to_jwk(rsa_key(index).public_key(), as_dict=True)
    return {"use": "sig", "kty": "RSA", "kid": kid_of(index), "alg": "RS256", **jwk, **fields}


def jwks(*entries: dict[str, Any]) -> bytes:
    return json.dumps({"keys": list(entries)}).encode()


def public_pem(index: int = 0) -> bytes:
    return (
        rsa_key(index)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def claims(endpoint_id: str = ENDPOINT_ID, **overrides: Any) -> dict[str, Any]:
    """The docs' payload for ``endpoint_id``, issued now for an hour; a None override drops the claim."""
    now = int(time.time())
    payload = {
        "aud": "acronis.cloud",
        "exp": now + 3600,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "iss": ISSUER,
        "sub": "0d780ce3-5b1f-4c8e-9d5a-6b2f1e7a9c40",
        "scope": [{"role": endpoint_id}],
        "ver": 2,
        "sub_type": "platform-acgw",
        **overrides,
    }
    return {name: value for name, value in payload.items() if value is not None}


def token(payload: dict[str, Any] | None = None, index: int = 0, kid: str | None = None) -> str:
    """RS256 with key ``index``, header as the docs show it (``iri`` included)."""
    headers = {"kid": kid or kid_of(index), "iri": "urn:test"}
    return jwt.encode(payload or claims(), rsa_key(index), algorithm="RS256", headers=headers)


def corrupt(value: str) -> str:
    """One bit of the signature flipped (still valid base64url)."""
    head, body, signature = value.split(".")
    raw = bytearray(_unb64(signature))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{body}.{_b64(bytes(raw))}"


def unsigned(payload: dict[str, Any] | None = None, kid: str | None = None) -> str:
    """alg "none", empty signature."""
    head = b64_json({"alg": "none", "typ": "JWT", "kid": kid or kid_of(0)})
    return f"{head}.{b64_json(payload or claims())}."


def hs256_with_public_key(payload: dict[str, Any] | None = None, index: int = 0) -> str:
    """HS256 keyed with the public key's PEM (algorithm confusion; built by hand, PyJWT refuses to)."""
    head = b64_json({"alg": "HS256", "typ": "JWT", "kid": kid_of(index)})
    signing_input = f"{head}.{b64_json(payload or claims())}"
    digest = hmac.new(public_pem(index), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(digest)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64_json(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


class JwksServer:
    """HTTPS on 127.0.0.1: GET ``JWKS_PATH`` answers ``document`` (``status`` when not 200); counts hits."""

    def __init__(self, cert_pem: str, key_pem: str, document: bytes | None = None) -> None:
        self.document = document if document is not None else jwks(public_jwk(0))
        self.status = 200
        self.hits = 0
        self.fetched = threading.Event()  # set on every answered fetch; clear it to wait for the next
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's API name
                server.hits += 1
                ok = self.path == JWKS_PATH and server.status == 200
                body = server.document if ok else b'{"error": "unavailable"}'
                self.send_response(server.status if self.path == JWKS_PATH else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                server.fetched.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_pem, key_pem)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._httpd.server_address[1]}{JWKS_PATH}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="jwks-server", daemon=True)

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def wait_fetch(self, timeout: float = 5.0) -> bool:
        """Whether a fetch is answered within ``timeout`` (counting from the last ``fetched.clear()``)."""
        return self.fetched.wait(timeout)
