"""Acronis API client for one datacenter: cached OAuth 2.0 token, alerts, workload batches, retries."""

from __future__ import annotations

import email.utils
import functools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlsplit

import requests
from requests.auth import HTTPBasicAuth

from proxy.errors import (
    ApiRejected,
    ApiUnavailable,
    AuthFailure,
    ConnectorError,
    Interrupted,
    TransportError,
    TransportTimeout,
)
from proxy.origins import normalize_datacenter_url
from proxy.tokens import AccessToken, TokenCache, parse_token, token_request_body

log = logging.getLogger(__name__)

ALERTS_PATH = "/api/alert_manager/v1/alerts"
WORKLOADS_PATH = "/api/workload_management/v5/workloads"
RETRY_STATUSES = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class Datacenter:
    """One configured DC: its base URL and the API client credentials valid there (and only there)."""

    url: str
    client_id: str
    client_secret: str = field(repr=False)
    token_path: str = "/bc/idp/token"


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """In-call retries of one attempt cycle (§5); the outbox retries later cycles at its own pace."""

    max_tries: int = 4
    retry_budget: float = 30.0  # seconds one call may spend retrying, waits included
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    retry_after_cap: float = 60.0
    refresh_margin: float = 300.0
    default_token_lifetime: float = 7200.0
    body_limit: int = 2048  # error bodies are opaque text, truncated before they are stored or logged


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    text: str
    headers: Mapping[str, str]


class AcronisClient:
    """The calls the connector makes to one DC. Thread-safe; one token cache (and lock) per instance."""

    def __init__(
        self,
        session: requests.Session,
        datacenter: Datacenter,
        policy: CallPolicy | None = None,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.session = session
        self.datacenter = datacenter
        self.base_url = normalize_datacenter_url(datacenter.url)
        self.policy = policy or CallPolicy()
        self._monotonic = monotonic
        self._wait = wait or _sleep_wait
        self._rng = rng
        self._clock = clock
        self.tokens = TokenCache(self._fetch_token, margin=self.policy.refresh_margin, clock=clock)

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
        body = reply.text[: self.policy.body_limit]
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
        """One POST; the body is always read so the connection goes back to the pool (§5, 204 included)."""
        try:
            with self.session.post(url, allow_redirects=False, **kwargs) as response:
                return Reply(response.status_code, response.text, response.headers)
        except requests.ConnectTimeout as e:  # nothing was sent
            raise TransportError(f"{urlsplit(url).netloc}: connect timed out") from e
        except requests.Timeout as e:  # the request may have been processed (§3: at-least-once)
            raise TransportTimeout(f"{urlsplit(url).netloc}: read timed out") from e
        except requests.RequestException as e:
            raise TransportError(f"{urlsplit(url).netloc}: {type(e).__name__}") from e

    def _exchange(self, send: Callable[[], Reply], label: str) -> Reply:
        """Retry 408/429/5xx and transport failures with backoff and jitter, within the policy's budget."""
        policy = self.policy
        deadline = self._monotonic() + policy.retry_budget
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                reply = send()
            except (TransportError, ApiUnavailable) as e:
                failure: ConnectorError = e
            else:
                if reply.status not in RETRY_STATUSES and reply.status < 500:
                    return reply
                retry_after = parse_retry_after(reply.headers.get("Retry-After"), policy.retry_after_cap)
                failure = ApiUnavailable(
                    f"{label}: {reply.status}",
                    status=reply.status,
                    body=reply.text[: policy.body_limit],
                    retry_after=retry_after,
                )
            delay = min(policy.backoff_max, policy.backoff_base * 2 ** (attempt - 1))
            delay = delay / 2 + self._rng() * delay / 2
            if retry_after is not None:
                delay = max(delay, retry_after)
            if attempt >= policy.max_tries or self._monotonic() + delay > deadline:
                raise failure
            log.info("%s %s: %s; retry %d in %.2fs", self.base_url, label, failure, attempt, delay)
            if self._wait(delay):
                raise Interrupted(f"{label}: stop requested during a retry wait") from failure

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
        token = parse_token(dc.client_id, reply.text, self._clock(), self.policy.default_token_lifetime)
        log.info("%s: new access token, valid for %.0fs", self.base_url, token.expires_at - self._clock())
        return token


def parse_retry_after(value: str | None, cap: float) -> float | None:
    """Seconds from a Retry-After (delta or HTTP date), capped; None when absent or unparsable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), cap)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, min(when.timestamp() - time.time(), cap))


def _sleep_wait(seconds: float) -> bool:
    threading.Event().wait(seconds)
    return False
