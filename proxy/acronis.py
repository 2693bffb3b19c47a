"""Acronis API client for one datacenter: cached OAuth 2.0 token, alerts, workload batches, retries."""

from __future__ import annotations

import functools
import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote_plus

import requests
from requests.auth import HTTPBasicAuth

from proxy.errors import (
    ApiRejected,
    ApiUnavailable,
    AuthFailure,
    ConnectorError,
    DirectEgressRefused,
    ProxyFailure,
    TransportError,
)
from proxy.origins import normalize_datacenter_url
from proxy.tokens import AccessToken, TokenCache, parse_token, token_request_body
from proxy.transport import ERROR_BODY_LIMIT, Reply, parse_retry_after, retrying, send

log = logging.getLogger(__name__)

ALERTS_PATH = "/api/alert_manager/v1/alerts"
WORKLOADS_PATH = "/api/workload_management/v5/workloads"
RETRY_STATUSES = frozenset({408, 429})
DEFAULT_TOKEN_LIFETIME = 7200.0  # seconds, for a token answer that states none


@dataclass(frozen=True, slots=True)
class Datacenter:
    """One configured DC: its base URL and the API client credentials valid there (and only there)."""

    url: str
    client_id: str
    client_secret: str = field(repr=False)
    token_path: str = "/bc/idp/token"


class CallSettings(Protocol):
    """What a call reads of the ``[acronis]`` settings (endpoint/outbox/settings.py), passed as they are:
    in-call retries of one attempt cycle (§5); the outbox retries later cycles at its own pace."""

    @property
    def max_tries(self) -> int: ...
    @property
    def retry_budget(self) -> float: ...
    @property
    def backoff_base(self) -> float: ...
    @property
    def backoff_max(self) -> float: ...
    @property
    def retry_after_max(self) -> float: ...
    @property
    def token_refresh_margin(self) -> float: ...


class AcronisClient:
    """The calls the connector makes to one DC. Thread-safe; one token cache (and lock) per instance."""

    def __init__(
        self,
        session: requests.Session,
        datacenter: Datacenter,
        settings: CallSettings,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.session = session
        self.datacenter = datacenter
        self.base_url = normalize_datacenter_url(datacenter.url)
        self.settings = settings
        self._monotonic = monotonic
        self._wait = wait
        self._rng = rng
        self._clock = clock
        self.tokens = TokenCache(self._fetch_token, margin=settings.token_refresh_margin, clock=clock)

    def post_alert(self, alert: Mapping[str, Any], *, label: str = "") -> str:
        """Report one alert; returns the id the API created (proof of delivery; "" if it sent none).

        :raise ConnectorError: ApiRejected (4xx), ApiUnavailable, AuthFailure, ProxyFailure, TransportError.
        """
        reply = self._authorized_post(ALERTS_PATH, dict(alert), label or "alert")
        try:
            alert_id = json.loads(reply.text).get("id")
        except (ValueError, AttributeError):
            alert_id = None
        if not isinstance(alert_id, str):
            log.warning("%s %s: 200 without an alert id; counted as delivered", self.base_url, label)
            return ""
        return alert_id

    def post_workloads(self, items: Sequence[Mapping[str, Any]], *, label: str = "") -> None:
        """Report a batch of workloads (204); ``client_id`` is always this DC's API client.

        :raise ConnectorError: as post_alert.
        """
        body = {"items": [{**item, "client_id": self.datacenter.client_id} for item in items]}
        self._authorized_post(WORKLOADS_PATH, body, label or f"{len(items)} workloads")

    def _authorized_post(self, path: str, payload: dict[str, Any], label: str) -> Reply:
        """POST with the cached token; on 401 drop it, mint one, repeat once; a second 401 is fatal (§2)."""
        for round_ in (1, 2):
            token = self.tokens.get()
            reply = self._exchange(functools.partial(self._send, path, payload, token), label)
            if reply.status != 401:
                return self._classify(reply, label)
            self.tokens.invalidate(token)
            if round_ == 1:
                log.info("%s %s: 401, token dropped; refreshing once", self.base_url, label)
        raise AuthFailure(
            f"{self.base_url}: a freshly minted token was rejected twice (401); credentials revoked or wrong"
        )

    def _classify(self, reply: Reply, label: str) -> Reply:
        if 200 <= reply.status < 300:
            return reply
        body = reply.text[:ERROR_BODY_LIMIT]
        if 300 <= reply.status < 400:  # never followed: an API that redirects a POST is misconfigured
            raise ApiUnavailable(
                f"{label}: unexpected redirect {reply.status}", status=reply.status, body=body
            )
        raise ApiRejected(f"{label}: rejected with {reply.status}", status=reply.status, body=body)

    def _send(self, path: str, payload: dict[str, Any], token: str) -> Reply:
        return self._request(
            self.base_url + path,
            json=payload,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )

    def _request(self, url: str, **kwargs: Any) -> Reply:
        """One POST (proxy/transport.py maps its failures); the body is always read (§5, 204 included)."""
        return send(self.session, "POST", url, where="acronis", **kwargs)

    def _exchange(self, send_once: Callable[[], Reply], label: str) -> Reply:
        """408/429/5xx and transport failures retried with backoff and jitter, within the settings' budget."""
        settings = self.settings

        def attempt() -> Reply:
            reply = send_once()
            if reply.status in RETRY_STATUSES or reply.status >= 500:
                raise ApiUnavailable(
                    f"{label}: {reply.status}",
                    status=reply.status,
                    body=reply.text[:ERROR_BODY_LIMIT],
                    retry_after=parse_retry_after(reply.headers.get("Retry-After"), settings.retry_after_max),
                )
            return reply

        return retrying(
            attempt,
            retryable=_retryable,
            max_tries=settings.max_tries,
            budget=settings.retry_budget,
            base=settings.backoff_base,
            cap=settings.backoff_max,
            label=f"{self.base_url} {label}",
            monotonic=self._monotonic,
            wait=self._wait,
            rng=self._rng,
        )

    def _fetch_token(self) -> AccessToken:
        dc = self.datacenter
        # RFC 6749 §2.3.1 / Appendix B: id and secret are form-urlencoded before the Basic encoding.
        auth = HTTPBasicAuth(quote_plus(dc.client_id), quote_plus(dc.client_secret))
        url = self.base_url + dc.token_path
        reply = self._exchange(
            lambda: self._request(
                url,
                data=token_request_body(dc.client_id),
                auth=auth,
                headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            ),
            "token",
        )
        if reply.status != 200:
            raise AuthFailure(
                f"{self.base_url}: token request answered {reply.status} (redirects are not "
                "followed; 400/401 mean the client credentials were rejected)"
            )
        token = parse_token(dc.client_id, reply.text, self._clock(), DEFAULT_TOKEN_LIFETIME)
        log.info("%s: new access token, valid for %.0fs", self.base_url, token.expires_at - self._clock())
        return token


def _retryable(error: ConnectorError) -> bool:
    """Weather, not configuration: transport failures, 408/429/5xx, a proxy that could not connect."""
    if isinstance(error, DirectEgressRefused):
        return False
    if isinstance(error, ProxyFailure):
        return "407" not in error.cause and "TLS" not in error.cause
    return isinstance(error, TransportError | ApiUnavailable)
