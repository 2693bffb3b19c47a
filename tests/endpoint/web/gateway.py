"""The real endpoint in the gateway's JWT mode: its JWKS served over TLS on loopback, and a Bearer client."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

from endpoint.auth.jwt_settings import AcronisJwtSettings
from endpoint.config.settings import Settings
from models.db import DatabaseSettings
from proxy.session import ProxySettings
from tests.support.builders import DATACENTER, cyberapp_auth, make_settings
from tests.support.gateway_tokens import JwksServer
from tests.support.live_endpoint import (
    CALLBACK_PREFIX,
    EMPTY_TYPE,
    ENDPOINT_ID,
    REQUEST_PREFIX,
    LiveEndpoint,
    live_endpoint,
)
from tests.support.simulator_processes import Tls
from tests.support.two_partner_tenancy import ADMIN_PASSWORD, TENANT_A

V11_ENDPOINT = "cti.a.p.acgw.endpoint.v1.1~vendor.app.endpoint.v1.1"


def gateway_settings(
    db_settings: DatabaseSettings,
    jwks: JwksServer,
    tls: Tls,
    callback_auth: tuple[str, ...] = ("acronis_jwt",),
    **endpoint: Any,
) -> Settings:
    """/callback on ``callback_auth``; the JWKS at ``jwks`` (trusted through the outbound CA bundle)."""
    return make_settings(
        database=db_settings,
        endpoint={"callback_auth": callback_auth, **endpoint},
        acronis_jwt=AcronisJwtSettings(jwks_url=jwks.url, endpoint_ids=(ENDPOINT_ID, V11_ENDPOINT)),
        proxy=ProxySettings(ca_bundle=tls.ca_pem),
    )


def jwks_state(live: LiveEndpoint) -> dict[str, Any]:
    return dict(requests.get(live.base_url + "/healthz", timeout=5).json()["jwks"])


def wait_jwks(live: LiveEndpoint, state: str = "ok", timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
    """/healthz's JWKS block once it shows ``state`` (and ``fields``). :raise AssertionError: not in time."""
    deadline = time.monotonic() + timeout
    while True:
        current = jwks_state(live)
        if current["state"] == state and all(current[name] == value for name, value in fields.items()):
            return current
        assert time.monotonic() < deadline, f"JWKS state still {current}"
        time.sleep(0.05)


@contextmanager
def gateway_endpoint(settings: Settings, *, keys: bool = True) -> Iterator[LiveEndpoint]:
    """Serve ``settings``; with ``keys``, only once the first JWKS fetch succeeded."""
    with live_endpoint(settings) as live:
        if keys:
            wait_jwks(live)
        yield live


def bearer_callback(
    live: LiveEndpoint,
    token: str | None,
    callback: str = "a.p.enablement.read.v1.0",
    payload: dict[str, Any] | None = None,
    *,
    endpoint_id: str = ENDPOINT_ID,
    tenant_id: str = TENANT_A,
    login: str = "admin",
    request_id: str | None = None,
) -> requests.Response:
    """POST /callback as the gateway sends it: ``Authorization: Bearer`` (none when ``token`` is None),
    X-CyberApp-Auth, X-CyberApp-Extra and the envelope."""
    envelope: dict[str, Any] = {
        "type": EMPTY_TYPE if payload is None and callback.startswith("a.p.") else REQUEST_PREFIX + callback,
        "request_id": request_id or str(uuid.uuid4()),
        "created_at": "0001-01-01T00:00:00Z",
        "context": {
            "callback_id": CALLBACK_PREFIX + callback,
            "endpoint_id": endpoint_id,
            "tenant_id": tenant_id,
            "datacenter_url": DATACENTER,
        },
    }
    if payload is not None:
        envelope["payload"] = payload
    headers = {
        "Content-Type": "application/json",
        "X-CyberApp-Auth": cyberapp_auth(login, ADMIN_PASSWORD),
        "X-CyberApp-Extra": "e30=",  # base64("{}")
    }
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    return requests.post(live.base_url + "/callback", data=json.dumps(envelope), headers=headers, timeout=10)
