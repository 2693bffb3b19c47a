"""Sending callbacks as the gateway does: POST <callback URL> with the Bearer JWT and the CyberApp headers.

The signing key comes from the Acronis API simulator's key ring (``--keys-dir``): the newest key, re-read
before every new token, so a rotation at the simulator is picked up without restarting anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from simulators.gateway.envelopes import cyberapp_extra
from simulators.gateway.tokens import TokenFactory
from simulators.keyring import RingKey, load_keys


def ring_signing_key(directory: Path) -> RingKey:
    """The key the identity provider signs with now (one retry: a rotation may be replacing the ring).

    :raise ValueError: no readable ring in ``directory``.
    """
    try:
        return load_keys(directory)[0]
    except ValueError:
        return load_keys(directory)[0]


class GatewaySender:
    """Posts envelopes to one callback URL (the CyberApp Version's registered base URL)."""

    def __init__(
        self,
        url: str,
        tokens: TokenFactory,
        *,
        proxy: str | None = None,
        verify: bool | str = True,
        timeout: float = 30.0,
    ) -> None:
        self.url = url
        self.tokens = tokens
        self._session = requests.Session()
        self._session.trust_env = False  # only what we are told: no environment proxies or CA bundles
        if proxy:
            self._session.proxies = {"http": proxy, "https": proxy}
        self._session.verify = verify
        self._timeout = timeout

    def headers(
        self,
        envelope: dict[str, Any],
        *,
        token_kind: str = "valid",
        cyberapp_auth: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, str]:
        """Content-Type, Authorization (per ``token_kind``), X-CyberApp-Auth when given, X-CyberApp-Extra.

        :raise ValueError: an unknown token kind.
        """
        headers = {"Content-Type": "application/json", "X-CyberApp-Extra": cyberapp_extra(extra)}
        token = self.tokens.token(token_kind, envelope["context"]["endpoint_id"])
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if cyberapp_auth is not None:
            headers["X-CyberApp-Auth"] = cyberapp_auth
        return headers

    def send(self, envelope: dict[str, Any], **options: Any) -> requests.Response:
        """POST one envelope; ``options`` as for ``headers()``. :raise requests.RequestException:"""
        data = json.dumps(envelope).encode("utf-8")
        return self._session.post(
            self.url, data=data, headers=self.headers(envelope, **options), timeout=self._timeout
        )

    def close(self) -> None:
        self._session.close()


def response_body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:2000]
