"""One structured log line per request (no header values, bodies, secrets or signatures, ever), and the
same facts counted in the request metrics when they are on."""

from __future__ import annotations

import logging
from typing import Any

import tornado.web

log = logging.getLogger("endpoint.access")


def log_request(handler: tornado.web.RequestHandler) -> None:
    status = handler.get_status()
    seconds = handler.request.request_time()
    fields: dict[str, Any] = {
        "method": handler.request.method,
        "path": handler.request.path,
        "status": status,
        "ms": round(1000 * seconds, 2),
        "correlation": getattr(handler, "correlation_id", None),
    }
    client_ip = getattr(handler, "client_ip", None)
    if client_ip:
        fields["client"] = client_ip
    fields.update(getattr(handler, "log_fields", {}))
    reason = getattr(handler, "reject_reason", None)
    if reason:
        fields["reason"] = reason
    level = logging.INFO if status < 500 else logging.ERROR
    extra: dict[str, Any] = {"fields": fields}
    if 400 <= status < 500:
        # Sampled per reason (endpoint/logsetup.py): a flood of refused requests costs a line per interval.
        extra["rejection"] = f"{status} {reason or ''}"
    log.log(level, "request", extra=extra)
    metrics = getattr(getattr(handler, "runtime", None), "metrics", None)
    if metrics is not None:
        metrics.observe(getattr(handler, "route_label", "other"), status, seconds, reason)
