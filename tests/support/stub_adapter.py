"""A transport stub: records what the session hands to its adapter, answers canned responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import BaseAdapter


class StubAdapter(BaseAdapter):
    """Mount on a session to see the proxies/verify/timeout/cert/headers each request really gets."""

    def __init__(
        self, respond: Callable[[requests.PreparedRequest], tuple[int, dict[str, str], bytes]] | None = None
    ):
        super().__init__()
        self.calls: list[dict[str, Any]] = []
        self.respond = respond or (lambda request: (200, {"Content-Type": "application/json"}, b"{}"))

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        self.calls.append(
            {
                "url": request.url,
                "method": request.method,
                "headers": dict(request.headers),
                "body": request.body,
                "timeout": timeout,
                "verify": verify,
                "cert": cert,
                "proxies": dict(proxies or {}),
            }
        )
        status, headers, body = self.respond(request)
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        response._content = body
        response.url = request.url or ""
        response.request = request
        response.reason = "stub"
        return response

    def close(self) -> None:
        pass
