"""Calls back to the APS controller (aps.md §5): OAuth 1.0 with the instance key, through the one session.

URL: urljoin(the APS-Controller-URI pinned for the instance, with a trailing '/', "aps/2/..."). Signing:
requests-oauthlib ``OAuth1`` (two-legged HMAC-SHA1, no token); it leaves JSON bodies out of the signature
and sends no ``oauth_body_hash`` (oauthlib's low-level ``Client.sign`` would add one if given the body).
Retries (proxy/transport.py, the only layer that retries): GET/PUT/DELETE on 429/502/503/504 and transport
failures; POST only when nothing reached the controller (connect failures). Each try is signed afresh: a
verbatim resend would replay a nonce the controller has already recorded.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote, urljoin, urlsplit

import requests
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_AUTH_HEADER
from requests_oauthlib import OAuth1
from urllib3.exceptions import NewConnectionError

from proxy.errors import ApiRejected, ApiUnavailable, ConnectorError, DirectEgressRefused, ProxyFailure
from proxy.transport import ERROR_BODY_LIMIT, retrying, send

log = logging.getLogger(__name__)

IDEMPOTENT = frozenset({"GET", "PUT", "DELETE", "HEAD"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
BACKOFF_MAX = 8.0  # seconds: the longest wait between two tries of one call


class ControllerCallSettings(Protocol):
    """What a call reads of the ``[aps]`` settings (endpoint/aps/settings.py), passed as they are."""

    @property
    def controller_timeout(self) -> tuple[float, float]: ...  # (connect, read): every call has one
    @property
    def controller_max_tries(self) -> int: ...
    @property
    def controller_backoff(self) -> float: ...  # doubled per retry, with jitter
    @property
    def controller_retry_budget(self) -> float: ...  # seconds one call may spend retrying, waits included


def controller_url(controller_uri: str, path: str) -> str:
    """urljoin on the controller base; a missing trailing '/' would make urljoin drop the last segment."""
    base = controller_uri if controller_uri.endswith("/") else controller_uri + "/"
    return urljoin(base, path.lstrip("/"))


def controller_message(text: str) -> str:
    """The controller's error ``message`` (APS error body), else a short excerpt of the body."""
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        return document["message"][:300]
    return " ".join(text.split())[:200]


class ControllerClient:
    """One instance's view of its controller. Thread-safe (the session is shared, nothing else is)."""

    def __init__(
        self,
        session: requests.Session,
        controller_uri: str,
        key: str,
        secret: str,
        settings: ControllerCallSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.session = session
        self.controller_uri = controller_uri
        self.settings = settings
        self._auth = OAuth1(
            key,
            client_secret=secret,
            signature_method=SIGNATURE_HMAC_SHA1,
            signature_type=SIGNATURE_TYPE_AUTH_HEADER,
        )
        self._sleep = sleep
        self._rng = rng

    def _wait(self, seconds: float) -> bool:
        self._sleep(seconds)
        return False  # controller calls have no stop request to honour mid-wait

    def __repr__(self) -> str:  # the secret never reaches a log or a traceback
        return f"ControllerClient({self.controller_uri!r})"

    def get_resource(
        self, resource_id: str, *, transaction_id: str | None = None, act_as: str | None = None
    ) -> dict[str, Any]:
        """GET aps/2/resources/{id}. :raise ConnectorError: ApiRejected (4xx), ApiUnavailable, Transport*."""
        result = self.request(
            "GET", _resource_path(resource_id), transaction_id=transaction_id, act_as=act_as
        )
        if not isinstance(result, dict):
            raise ApiUnavailable("controller: the resource is not a JSON object", status=200)
        return result

    def put_resource(
        self,
        resource_id: str,
        body: Mapping[str, Any],
        *,
        transaction_id: str | None = None,
        act_as: str | None = None,
    ) -> Any:
        """PUT aps/2/resources/{id} (e.g. usage counters). :raise ConnectorError:"""
        return self.request(
            "PUT", _resource_path(resource_id), body, transaction_id=transaction_id, act_as=act_as
        )

    def resources(self, rql: str = "", *, transaction_id: str | None = None) -> list[Any]:
        """GET aps/2/resources?<RQL>: the resources this instance may see. :raise ConnectorError:"""
        result = self.request(
            "GET", "aps/2/resources" + (f"?{rql}" if rql else ""), transaction_id=transaction_id
        )
        return result if isinstance(result, list) else []

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        transaction_id: str | None = None,
        act_as: str | None = None,
    ) -> Any:
        """One call with the bounded retries of the module docstring; returns the decoded JSON (or None).

        :raise ConnectorError: every failure, wrapped once (never a requests exception).
        """
        method = method.upper()
        url = controller_url(self.controller_uri, path)
        headers = {"Accept": "application/json"}
        if transaction_id:
            headers["APS-Transaction-ID"] = transaction_id
        if act_as:
            headers["APS-Resource-ID"] = act_as  # impersonation: act as this resource's owner
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode("utf-8")
        settings = self.settings
        return retrying(
            lambda: self._once(method, url, data, headers),
            retryable=lambda error: _retryable(method, error),
            max_tries=settings.controller_max_tries,
            budget=settings.controller_retry_budget,
            base=settings.controller_backoff,
            cap=BACKOFF_MAX,
            label=f"controller {method} {urlsplit(url).path} (transaction {transaction_id or '-'})",
            wait=self._wait,
            rng=self._rng,
        )

    def _once(self, method: str, url: str, data: bytes | None, headers: dict[str, str]) -> Any:
        where = urlsplit(url).netloc
        # A fresh Request each time: OAuth1 signs it with a new nonce and timestamp.
        reply = send(
            self.session,
            method,
            url,
            where="controller",
            data=data,
            headers=headers,
            auth=self._auth,
            timeout=self.settings.controller_timeout,
        )
        status, text = reply.status, reply.text
        if 200 <= status < 300:
            if not text.strip():
                return None
            try:
                return json.loads(text)
            except ValueError as e:
                raise ApiUnavailable(
                    f"controller {where}: {status} with a non-JSON body", status=status
                ) from e
        body = text[:ERROR_BODY_LIMIT]
        message = f"controller {where}: {method} answered {status}: {controller_message(text)}"
        if status in RETRY_STATUSES or status >= 500:
            raise ApiUnavailable(message, status=status, body=body)
        raise ApiRejected(message, status=status, body=body)


def _resource_path(resource_id: str) -> str:
    return "aps/2/resources/" + quote(resource_id, safe="")


def _retryable(method: str, error: ConnectorError) -> bool:
    if isinstance(error, DirectEgressRefused) or isinstance(error, ApiRejected):
        return False
    if isinstance(error, ProxyFailure) and ("407" in error.cause or "TLS" in error.cause):
        return False  # configuration, not weather
    if method in IDEMPOTENT:
        return not isinstance(error, ApiUnavailable) or error.status in RETRY_STATUSES
    return _nothing_sent(error)


def _nothing_sent(error: BaseException) -> bool:
    """True when the request cannot have reached the controller: the connection was never made."""
    if isinstance(error, ProxyFailure):
        return True  # the tunnel was refused: nothing went past the proxy
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, requests.ConnectTimeout | NewConnectionError | ConnectionRefusedError):
            return True
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return False
