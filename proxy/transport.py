"""Sending through the one session: requests' exceptions mapped to ours, and the one in-call retry loop.

Retries happen in exactly one layer. The session below never retries (proxy/session.py), and the clients
above (proxy/acronis.py, proxy/controller.py) only say what may be retried: ``retrying`` repeats a whole
call -- re-signed, with a fresh token -- at most ``max_tries`` times within ``budget`` seconds, waits
included. Retries across calls (minutes, hours) belong to the outbox and the APS job runner, which use
the same ``backoff_delay``.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from proxy.errors import ConnectorError, Interrupted, TransportError, TransportTimeout

log = logging.getLogger(__name__)

T = TypeVar("T")
_MAX_DOUBLINGS = 32  # 2**32 times any base is past every cap; keeps the float finite for huge attempts
ERROR_BODY_LIMIT = 2048  # error bodies are opaque text, truncated before they are stored or logged


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    text: str
    headers: Mapping[str, str]


def backoff_delay(
    attempt: int,
    base: float,
    cap: float,
    *,
    floor: float | None = None,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before try ``attempt + 1``: ``base * 2**(attempt-1)`` capped at ``cap``, with equal
    jitter (half fixed, half random, so synchronized clients spread out); ``floor`` (a server's
    Retry-After, already capped) is the least it returns."""
    ceiling = min(cap, base * 2 ** min(max(attempt - 1, 0), _MAX_DOUBLINGS))
    delay = ceiling / 2 + rng() * ceiling / 2
    return delay if floor is None else max(delay, floor)


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


def send(session: requests.Session, method: str, url: str, *, where: str, **kwargs: Any) -> Reply:
    """One request, never redirected, its body always read (the connection goes back to the pool).

    :raise ConnectorError: the session's own (ProxyFailure, DirectEgressRefused) as they are; requests'
        failures as TransportError, or TransportTimeout when the request may have been processed.
    """
    host = urlsplit(url).netloc
    try:
        with session.request(method, url, allow_redirects=False, **kwargs) as response:
            return Reply(response.status_code, response.text, response.headers)
    except ConnectorError:
        raise
    except requests.ConnectTimeout as e:  # nothing was sent
        raise TransportError(f"{where} {host}: connect timed out") from e
    except requests.Timeout as e:  # the request may have been processed (at-least-once)
        raise TransportTimeout(f"{where} {host}: read timed out") from e
    except requests.RequestException as e:
        raise TransportError(f"{where} {host}: {type(e).__name__}") from e


def retrying(
    call: Callable[[], T],
    *,
    retryable: Callable[[ConnectorError], bool],
    max_tries: int,
    budget: float,
    base: float,
    cap: float,
    label: str,
    monotonic: Callable[[], float] = time.monotonic,
    wait: Callable[[float], bool] | None = None,
    rng: Callable[[], float] = random.random,
) -> T:
    """``call()`` until it returns, a failure is not ``retryable``, ``max_tries`` ran out, or the next wait
    would end past ``budget`` seconds from now. A failure's ``retry_after`` is a floor for the wait.

    ``wait(seconds)`` returns True when a stop was requested meanwhile (then Interrupted is raised).
    :raise ConnectorError: the last failure.
    """
    wait = wait or _sleep
    deadline = monotonic() + budget
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except ConnectorError as failure:
            if attempt >= max_tries or not retryable(failure):
                raise
            delay = backoff_delay(attempt, base, cap, floor=getattr(failure, "retry_after", None), rng=rng)
            if monotonic() + delay > deadline:
                raise
            log.info("%s: %s; retry %d in %.2fs", label, failure, attempt, delay)
            if wait(delay):
                raise Interrupted(f"{label}: stop requested during a retry wait") from failure


def _sleep(seconds: float) -> bool:
    threading.Event().wait(seconds)
    return False
