"""One structured log line per request (no header values, bodies, secrets or signatures, ever), and the
same facts counted in the request metrics when they are on."""

from __future__ import annotations

import logging
from typing import Any

import tornado.web

from endpoint.observability.metrics import ServeMetrics

log = logging.getLogger("endpoint.access")


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's ``log_function``: the line of a RequestHandler route."""
    write_access_line(
        getattr(getattr(handler, "runtime", None), "metrics", None),
        getattr(handler, "route_label", "other"),
        handler.request.method or "",
        handler.request.path,
        handler.get_status(),
        handler.request.request_time(),
        getattr(handler, "correlation_id", None),
        getattr(handler, "client_ip", None),
        getattr(handler, "log_fields", {}),
        getattr(handler, "reject_reason", None),
    )


def write_access_line(
    metrics: ServeMetrics | None,
    route_label: str,
    method: str,
    path: str,
    status: int,
    seconds: float,
    correlation: str | None,
    client: str | None,
    route_fields: dict[str, Any],
    reason: str | None,
) -> None:
    """The line, for any route (``endpoint/web/exchange.py`` calls it directly)."""
    fields: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "ms": round(1000 * seconds, 2),
        "correlation": correlation,
    }
    if client:
        fields["client"] = client
    fields.update(route_fields)
    if reason:
        fields["reason"] = reason
    level = logging.INFO if status < 500 else logging.ERROR
    extra: dict[str, Any] = {"fields": fields}
    if 400 <= status < 500 or status == 503:
        # Sampled per reason (endpoint/observability/logsetup.py): a flood of refused requests costs a
        # line per interval, and so does a database outage, where every request is refused with 503.
        extra["rejection"] = f"{status} {reason or ''}"
    log.log(level, "request", extra=extra)
    if metrics is not None:
        metrics.observe(route_label, status, seconds, reason)
