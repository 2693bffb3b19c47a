"""The sender: the headers the gateway sends, the key re-read from the ring, no environment proxies."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jwt
import pytest

from simulators.controller.callbacks import cyberapp_auth
from simulators.gateway.envelopes import envelope
from simulators.gateway.sender import GatewaySender, ring_signing_key
from simulators.gateway.tokens import TokenFactory
from simulators.keyring import KeyRing
from tests.simulators.gateway.conftest import Served

ROLE = "cti.a.p.acgw.endpoint.v1.0~vendor.app.endpoint.v1.0"


def sender_for(served: Served) -> GatewaySender:
    return GatewaySender(served.url, TokenFactory(lambda: ring_signing_key(served.keys_dir)))


def test_a_callback_carries_bearer_extra_and_credentials(served: Served) -> None:
    sender = sender_for(served)
    auth = cyberapp_auth("reseller-admin", "pa:ss w0rd")
    response = sender.send(envelope("a.p.enablement.read.v1.0", endpoint=ROLE), cyberapp_auth=auth)
    assert response.status_code == 200, response.text
    headers = served.app.received[-1]["headers"]
    assert headers["Content-Type"] == "application/json" and headers["X-CyberApp-Auth"] == auth
    assert json.loads(base64.b64decode(headers["X-CyberApp-Extra"])) == {}
    token = headers["Authorization"].removeprefix("Bearer ")
    assert jwt.get_unverified_header(token)["kid"] == served.app.ring.signing_key().kid
    sender.close()


def test_no_credentials_no_header_and_a_missing_token_no_authorization(served: Served) -> None:
    sender = sender_for(served)
    response = sender.send(
        envelope("a.p.partner.mirroring.get_state.v1.0", endpoint=ROLE), token_kind="missing"
    )
    assert response.status_code == 401
    headers = served.app.received[-1]["headers"]
    assert "Authorization" not in headers and "X-CyberApp-Auth" not in headers
    sender.close()


def test_the_environment_proxy_is_ignored(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # would refuse every connection
    response = sender_for(served).send(envelope("a.p.partner.mirroring.get_state.v1.0", endpoint=ROLE))
    assert response.status_code == 200


def test_a_missing_ring_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a readable key ring"):
        ring_signing_key(tmp_path)
    KeyRing.open(tmp_path)
    assert ring_signing_key(tmp_path).published
