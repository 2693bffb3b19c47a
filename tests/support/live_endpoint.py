"""A real endpoint on a loopback port, served from a background thread, and a signing HTTP client."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
import tornado.netutil

from endpoint.config.settings import Settings
from endpoint.web.server import serve
from tests.support.builders import CONSUMER_KEY, CONSUMER_SECRET, DATACENTER, cyberapp_auth, sign

CALLBACK_PREFIX = "cti.a.p.acgw.callback.v1.0~"
REQUEST_PREFIX = "cti.a.p.acgw.request.v1.0~"
ENDPOINT_ID = "cti.a.p.acgw.endpoint.v1.0~vendor.app.endpoint.v1.0"
EMPTY_TYPE = REQUEST_PREFIX + "a.p.empty.v1.0"


@dataclass
class LiveEndpoint:
    base_url: str  # where the server really listens (http://127.0.0.1:<port>)
    settings: Settings
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def public_base(self) -> str:
        return self.settings.endpoint.public_base_url.rstrip("/")

    def signed(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        key: str = CONSUMER_KEY,
        secret: str = CONSUMER_SECRET,
        **sign_kwargs: Any,
    ) -> requests.Response:
        """Sign for the public URL (what the controller signs), send to the real listening address."""
        headers = dict(headers or {})
        host = headers.pop("Host", None)  # oauthlib's Client would sign a Host header's authority instead
        signed_headers = sign(method, self.public_base + path, headers, key=key, secret=secret, **sign_kwargs)
        if host is not None:
            signed_headers["Host"] = host
        return self.session.request(
            method, self.base_url + path, data=body, headers=signed_headers, timeout=10
        )

    def callback(
        self,
        callback: str,
        payload: dict[str, Any] | None = None,
        *,
        login: str | None = "admin",
        password: str = "admin-password",
        tenant_id: str | None = None,
        request_type: str | None = None,
        request_id: str | None = None,
        extra_headers: dict[str, str] | None = None,
        **sign_kwargs: Any,
    ) -> requests.Response:
        """POST /callback with a full envelope, signed; X-CyberApp-Auth for ``login`` (None: no header)."""
        envelope: dict[str, Any] = {
            # Predefined a.p.* callbacks without input use the empty type; custom ones use their own id.
            "type": request_type
            or (EMPTY_TYPE if payload is None and callback.startswith("a.p.") else REQUEST_PREFIX + callback),
            "request_id": request_id or str(uuid.uuid4()),
            "created_at": "2026-11-22T10:00:00+00:00",
            "context": {
                "callback_id": CALLBACK_PREFIX + callback,
                "endpoint_id": ENDPOINT_ID,
                "tenant_id": tenant_id or "0dd47bbb-d065-447f-ab7c-06e05887078b",
                "datacenter_url": DATACENTER,
            },
        }
        if payload is not None:
            envelope["payload"] = payload
        headers = {"X-CyberApp-Auth": cyberapp_auth(login, password)} if login is not None else {}
        headers.update(extra_headers or {})
        return self.signed(
            "POST", "/callback", body=json.dumps(envelope).encode(), headers=headers, **sign_kwargs
        )


@contextmanager
def live_endpoint(settings: Settings) -> Iterator[LiveEndpoint]:
    """Serve ``settings`` (database already initialized and migrated) until the block exits."""
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    started = threading.Event()
    state: dict[str, Any] = {}

    def run() -> None:
        async def main() -> None:
            stop = asyncio.Event()
            state["stop"], state["loop"] = stop, asyncio.get_running_loop()
            await serve(settings, sockets, ready=lambda urls: started.set(), stop=stop)

        try:
            asyncio.run(main())
        except BaseException as e:  # surfaced to the test below
            state["error"] = e
            started.set()

    thread = threading.Thread(target=run, name="live-endpoint", daemon=True)
    thread.start()
    if not started.wait(10) or "error" in state:
        raise RuntimeError(f"endpoint did not start: {state.get('error')!r}")
    live = LiveEndpoint(f"http://127.0.0.1:{port}", settings)
    try:
        yield live
    finally:
        live.session.close()
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(15)
