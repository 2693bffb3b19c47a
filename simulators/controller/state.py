"""What the simulated controller holds: its resources and registered applications, every request it
received (``Received``), the faults it is told to inject (``Fault``), all behind one lock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulators.controller.verify import Verifier


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # Authorization reduced to its parameter names
    body: Any
    verified: bool
    key: str | None
    reason: str
    status: int = 0


@dataclass
class Fault:
    method: str  # "*" for any
    path_prefix: str
    status: int | None  # None: answer normally (after ``delay``); 0: drop the connection unanswered
    times: int  # how many requests it hits; -1: until cleared
    delay: float = 0.0


@dataclass
class ControllerState:
    verifier: Verifier
    token: str | None = None  # the APS-Token provider staff use for /aps/2/applications
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    applications: dict[str, dict[str, Any]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    on_register: Callable[[dict[str, Any], str], int] | None = None  # (document, instance id) -> status
    record_path: str | None = None  # JSON lines of what was received (the local stack's log)
    account_delay: float = 0.0  # seconds a read of an account resource takes (a controller under load)
    lock: threading.Lock = field(default_factory=threading.Lock)
