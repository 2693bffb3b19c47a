"""The simulated controller's own OAuth check: exactly what the connector must send, nothing else."""

from __future__ import annotations

import pytest
from oauthlib.oauth1 import Client

from simulators.controller.verify import Verifier

KEY = "acme-3f9c0e7d2b6a4c1e8d5f7a9b0c2e4d6f"
SECRET = "secret-" + "x" * 40
BASE = "https://apsc.example.net:6308/"
PATH = "/aps/2/resources/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def authorization(url: str = BASE.rstrip("/") + PATH, method: str = "GET", **client: object) -> str:
    signer = Client(KEY, client_secret=SECRET, **client)  # type: ignore[arg-type]
    _, headers, _ = signer.sign(url, http_method=method)
    return str(headers["Authorization"])


@pytest.fixture
def verifier() -> Verifier:
    trusted = Verifier(BASE)
    trusted.trust(KEY, SECRET)
    return trusted


def test_a_correct_signature_once(verifier: Verifier) -> None:
    header = authorization()
    verdict = verifier.verify("GET", PATH, header)
    assert verdict.ok and verdict.key == KEY
    assert verifier.verify("GET", PATH, header).reason == "nonce replayed"


@pytest.mark.parametrize(
    ("method", "path", "header", "reason"),
    [
        ("PUT", PATH, None, "signature not valid"),  # another method
        ("GET", PATH + "x", None, "signature not valid"),  # another URL
        ("GET", PATH, "Bearer abc", "no OAuth Authorization header"),
        ("GET", PATH, "", "no OAuth Authorization header"),
    ],
)
def test_anything_else_fails(
    verifier: Verifier, method: str, path: str, header: str | None, reason: str
) -> None:
    verdict = verifier.verify(method, path, authorization() if header is None else header)
    assert not verdict.ok and reason in verdict.reason


def test_body_hashes_tokens_and_unknown_keys_are_refused(verifier: Verifier) -> None:
    url = BASE.rstrip("/") + PATH
    signer = Client(KEY, client_secret=SECRET)
    _, hashed, _ = signer.sign(
        url, http_method="PUT", body='{"a": 1}', headers={"Content-Type": "application/json"}
    )
    assert "oauth_body_hash present" in verifier.verify("PUT", PATH, hashed["Authorization"]).reason
    token = authorization(resource_owner_key="tok-123456", resource_owner_secret="s")
    assert "oauth_token present" in verifier.verify("GET", PATH, token).reason
    verifier.forget(KEY)
    assert not verifier.verify("GET", PATH, authorization()).ok
