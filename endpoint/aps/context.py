"""What an APS service call knows about its request (ApsContext) and what it answers (Outcome)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ApsContext:
    """A verified, bound APS request: the instance it targets and the controller that sent it."""

    instance_id: str
    controller_uri: str  # equal to the URI pinned for the instance (checked before this exists)
    consumer_key: str
    secret_id: int
    transaction_id: str | None
    phase: str  # "sync" or "async"
    organization_id: str = ""  # the partner the instance serves ("" until the instance exists)
    app_id: str = ""  # the app resource's aps.id ("" until the instance exists)

    @property
    def log_extra(self) -> dict[str, Any]:
        """``extra=`` for log calls, so every line of the request carries the transaction id."""
        return {"fields": {"transaction": self.transaction_id, "instance": self.instance_id}}


@dataclass(frozen=True, slots=True)
class Outcome:
    """An APS answer: status, JSON body (None: empty) and extra headers."""

    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def loads_object(text: str | None) -> dict[str, Any]:
    """A stored JSON object column (``{}`` when empty)."""
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
