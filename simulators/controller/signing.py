"""Requests signed like the APS controller: two-legged OAuth 1.0 HMAC-SHA1 over the public URL.

The controller signs the URL it calls (``aps.endpoint`` + path) with the instance key and secret from
app_instance.json, leaves the JSON body unsigned (no oauth_body_hash) and adds the APS headers. When
the public URL does not resolve to the endpoint (tests, a laptop), ``connect_to`` names where to send
the request instead; the signature still covers the public URL, as it would through the proxies.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests_oauthlib import OAuth1


@dataclass(frozen=True, slots=True)
class Instance:
    """What the controller knows of an application instance (from the registration document)."""

    endpoint: str  # aps.endpoint, byte for byte
    key: str
    secret: str

    def __repr__(self) -> str:
        return f"Instance(endpoint={self.endpoint!r}, key={self.key!r}, secret='***')"

    @classmethod
    def from_document(cls, path: Path) -> Instance:
        """:raise ValueError: the file is not an application-instance document."""
        try:
            return cls.from_mapping(json.loads(path.read_text(encoding="utf-8")))
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e

    @classmethod
    def from_mapping(cls, document: Any) -> Instance:
        """:raise ValueError: not an application-instance document (``POST /aps/2/applications`` body)."""
        try:
            aps = document["aps"]
            return cls(aps["endpoint"], aps["auth"]["oauth"]["key"], aps["auth"]["oauth"]["secret"])
        except (KeyError, TypeError) as e:
            raise ValueError(f"not an application-instance document (missing {e})") from e


class ControllerSigner:
    """Sends requests to the connector as the controller would."""

    def __init__(
        self,
        instance: Instance,
        *,
        connect_to: str | None = None,
        proxy: str | None = None,
        verify: bool | str = True,
        timeout: float = 30.0,
    ) -> None:
        self.instance = instance
        self._connect_to = connect_to.rstrip("/") if connect_to else None
        self._session = requests.Session()
        self._session.trust_env = False  # only what we are told: no environment proxies or CA bundles
        if proxy:
            self._session.proxies = {"http": proxy, "https": proxy}
        self._session.verify = verify
        self._timeout = timeout

    def url(self, path: str) -> str:
        """The public URL for a service path: aps.endpoint + path (one '/' between them)."""
        return self.instance.endpoint.rstrip("/") + "/" + path.lstrip("/")

    def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        instance_id: str | None = None,
        controller_uri: str | None = None,
        phase: str | None = None,
    ) -> requests.Response:
        """Sign for the public URL and send (to ``connect_to`` when set). ``body`` is JSON-encoded."""
        public = self.url(path)
        all_headers = {"Content-Type": "application/json", "APS-Transaction-ID": str(uuid.uuid4())}
        if instance_id:
            all_headers["APS-Instance-ID"] = instance_id
        if controller_uri:
            all_headers["APS-Controller-URI"] = controller_uri
        if phase:
            all_headers["APS-Request-Phase"] = phase
        all_headers.update(headers or {})
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = requests.Request(
            method,
            public,
            data=data,
            headers=all_headers,
            auth=OAuth1(self.instance.key, self.instance.secret),
        )
        prepared = self._session.prepare_request(request)  # signs the public URL
        if self._connect_to:
            parts = urlsplit(prepared.url or "")
            target = urlsplit(self._connect_to)
            prepared.url = urlunsplit((target.scheme, target.netloc, parts.path, parts.query, ""))
            prepared.headers["Host"] = urlsplit(public).netloc
        return self._session.send(prepared, timeout=self._timeout, allow_redirects=False)

    def close(self) -> None:
        self._session.close()
