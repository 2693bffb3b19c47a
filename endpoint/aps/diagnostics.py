"""testConnection: check the outbound path step by step (proxy, controller, Acronis token) and report each.

Blocking network work: run it in the outbound pool, never on the IOLoop. Details are short and carry no
secret; a failing step does not stop the others, so one report shows everything that is wrong.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from endpoint.aps.outbound import Outbound
from endpoint.aps.runner import public_reason
from endpoint.config.loader import ConfigError
from endpoint.outbox.settings import AcronisSettings
from proxy.acronis import AcronisClient
from proxy.controller import ControllerClient
from proxy.errors import ConnectorError, SecretNotSet

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    ok: bool
    detail: str
    ms: float

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "ms": self.ms}


def _timed(name: str, check: Callable[[], str], extra: dict[str, Any]) -> Step:
    started = time.monotonic()
    try:
        detail, ok = check(), True
    except ConnectorError as e:
        log.info("testConnection %s: %s", name, e, extra=extra)
        detail, ok = public_reason(e) if "controller" in name else str(e), False
    except (ConfigError, OSError) as e:
        detail, ok = str(e), False
    return Step(name, ok, detail[:300], round(1000 * (time.monotonic() - started), 1))


def check_proxy(outbound: Outbound) -> str:
    """A TCP connection to the configured proxy (no request is sent). :raise OSError:"""
    settings = outbound.proxy
    if settings.url is None:
        return "no outbound proxy configured: direct connections"
    parts = urlsplit(settings.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with socket.create_connection((parts.hostname or "", port), timeout=settings.connect_timeout):
        pass
    return f"{settings.display_url} accepts connections"


def run_connection_test(
    outbound: Outbound,
    acronis: AcronisSettings,
    controller: Callable[[], ControllerClient],
    app_id: str,
    transaction_id: str | None,
) -> dict[str, Any]:
    """{"ok": all steps passed, "steps": [{"name", "ok", "detail", "ms"}]}."""
    extra = {"fields": {"transaction": transaction_id}}
    steps = [_timed("proxy", lambda: check_proxy(outbound), extra)]

    def read_instance() -> str:
        controller().get_resource(app_id, transaction_id=transaction_id)
        return "the application resource is readable through the outbound path"

    steps.append(_timed("controller", read_instance, extra))
    if not acronis.datacenters:
        steps.append(Step("acronis", False, "no datacenter configured (acronis.datacenters)", 0.0))
    else:
        resolved: dict[str, Any] = {}
        try:
            resolved = acronis.resolve(outbound.environ)
        except SecretNotSet as e:
            steps.append(Step("acronis", False, str(e), 0.0))
        for url, datacenter in resolved.items():

            def token(datacenter: Any = datacenter) -> str:
                client = AcronisClient(outbound.session(), datacenter, acronis)
                client.tokens.get()  # a fresh client: this really asks the datacenter for a token
                return "access token obtained"

            steps.append(_timed(f"acronis {url}", token, extra))
    return {"ok": all(step.ok for step in steps), "steps": [step.as_dict() for step in steps]}
