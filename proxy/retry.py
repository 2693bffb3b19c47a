"""The urllib3 retry policy under the outbound session: what may be resent verbatim, and how often."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from urllib3.util.retry import Retry

if TYPE_CHECKING:
    from proxy.session import ProxySettings


class CappedRetry(Retry):
    """urllib3 Retry whose Retry-After is capped on every urllib3 2.x (retry_after_max is recent)."""

    cap: float = 60.0

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), self.cap)

    def new(self, **kw: Any) -> CappedRetry:
        fresh = super().new(**kw)
        fresh.cap = self.cap
        return fresh  # type: ignore[return-value]


def make_retry(settings: ProxySettings, *, signed: bool = False) -> CappedRetry:
    """Connection errors always (nothing was sent); statuses only for idempotent methods; `other` never.

    ``signed``: the requests carry a one-time signature (OAuth 1.0 nonce). urllib3 resends a request
    verbatim, so a status or read retry would replay a nonce the receiver has already recorded and earn
    a 401; only connect failures (the request never left) are retried here, the caller re-signs the rest.
    """
    resend = 0 if signed else settings.retries
    retry = CappedRetry(
        total=settings.retries,
        connect=settings.retries,
        read=resend,
        status=resend,
        other=0,  # unknown errors (TLS, tunnel 407) are not retried
        redirect=0,
        allowed_methods=frozenset(m.upper() for m in settings.retry_methods),
        status_forcelist=frozenset(settings.retry_statuses),
        backoff_factor=settings.backoff_factor,
        backoff_max=settings.backoff_max,
        backoff_jitter=settings.backoff_factor / 2,
        respect_retry_after_header=True,
        raise_on_status=False,  # the caller sees the final response and decides
    )
    retry.cap = settings.retry_after_max
    return retry
