"""Named scenarios: what the controller sends through an application's lifecycle, step by step.

Each step prints ``<scenario>: <METHOD> <path> -> <status> (ok|UNEXPECTED)``. Provisioning-type calls
follow the async protocol (aps.md §4.2): a 202 is polled with ``APS-Request-Phase: async`` after
``APS-Retry-Timeout`` seconds (capped by ``poll_cap``) until 200/201 or a failure. Ids live in ``state``
(a JSON file on the command line), so scenarios can be run one at a time across invocations.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import requests

from simulators.controller.signing import ControllerSigner

APP_TYPE = "http://vendor.example.com/acronis-connector/app/1.0"
TENANT_TYPE = "http://vendor.example.com/acronis-connector/tenant/1.0"
USER_TYPE = "http://vendor.example.com/acronis-connector/user/1.0"
ACCOUNT_TYPE = "http://aps-standard.org/types/core/account/1.0"
# The subscriber account the async provisioning names: ``serve`` knows it (company name below), so the
# connector reads the customer's name from the controller as it would from a real one.
DEMO_ACCOUNT_ID = "a0000000-0000-4000-8000-000000000001"
DEMO_ACCOUNT_NAME = "Simulated Subscriber Ltd"


def demo_account() -> dict[str, Any]:
    return {"aps": {"type": ACCOUNT_TYPE, "id": DEMO_ACCOUNT_ID}, "companyName": DEMO_ACCOUNT_NAME}


@dataclass
class StepResult:
    scenario: str
    method: str
    path: str
    status: int
    ok: bool
    polls: int = 0
    body: Any = None


@dataclass
class ScenarioRun:
    signer: ControllerSigner
    controller_uri: str
    state: dict[str, Any]
    out: TextIO | None = None
    poll_cap: float = 5.0  # seconds between async polls at most (APS-Retry-Timeout may say 60)
    max_polls: int = 60
    results: list[StepResult] = field(default_factory=list)

    def call(
        self,
        scenario: str,
        method: str,
        path: str,
        body: Any = None,
        expected: tuple[int, ...] = (200, 201, 204),
        *,
        poll: bool = False,
    ) -> StepResult:
        """Send one signed request (and its async polls); record and print the outcome."""
        transaction = {"APS-Transaction-ID": str(uuid.uuid4())}
        response = self._send(method, path, body, transaction, phase=None)
        polls = 0
        while poll and response.status_code == 202 and polls < self.max_polls:
            wait = _retry_timeout(response, self.poll_cap)
            info = response.headers.get("APS-Info", "")
            self._print(f"{scenario}: {method} {path} -> 202, polling in {wait:.1f}s ({info})")
            time.sleep(wait)
            polls += 1
            response = self._send(method, path, body, transaction, phase="async")
        result = StepResult(
            scenario,
            method,
            path,
            response.status_code,
            response.status_code in expected,
            polls,
            _json(response),
        )
        self.results.append(result)
        verdict = "ok" if result.ok else f"UNEXPECTED (wanted {'/'.join(map(str, expected))})"
        self._print(f"{scenario}: {method} {path} -> {response.status_code} {verdict}")
        return result

    def _send(
        self, method: str, path: str, body: Any, headers: dict[str, str], *, phase: str | None
    ) -> requests.Response:
        return self.signer.send(
            method,
            path,
            body,
            dict(headers),
            instance_id=self.state["instance_id"],
            controller_uri=self.controller_uri,
            phase=phase,
        )

    def _print(self, line: str) -> None:
        if self.out is not None:
            print(line, file=self.out, flush=True)


def _retry_timeout(response: requests.Response, cap: float) -> float:
    try:
        return max(0.0, min(float(response.headers.get("APS-Retry-Timeout", "1")), cap))
    except ValueError:
        return min(1.0, cap)


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def create_instance(run: ScenarioRun) -> None:
    run.state.setdefault("instance_id", str(uuid.uuid4()))
    body = {"aps": {"type": APP_TYPE, "id": run.state["instance_id"]}, "app": {"hubID": str(uuid.uuid4())}}
    run.call("create-instance", "POST", "app", body)


def provision_tenant(run: ScenarioRun, *, asynchronous: bool = False) -> None:
    """Sync: a named tenant with an admin; async: a tenant whose name the connector must look up."""
    name = "provision-tenant-async" if asynchronous else "provision-tenant"
    key = "async_tenant_id" if asynchronous else "tenant_id"
    tenant_id = run.state.setdefault(key, str(uuid.uuid4()))
    body: dict[str, Any] = {
        "aps": {"type": TENANT_TYPE, "id": tenant_id, "status": "aps:provisioning"},
        "USERS": {"limit": 10},
    }
    if asynchronous:
        body["account"] = {"aps": {"id": run.state.setdefault("account_id", DEMO_ACCOUNT_ID)}}
    else:
        body["name"] = "Simulated Customer"
        body["admin"] = {
            "login": f"admin-{tenant_id[:8]}",
            "name": "Customer Admin",
            "email": "admin@example.com",
        }
    run.call(name, "POST", "tenants", body, poll=True)


def add_users(run: ScenarioRun, count: int = 2) -> None:
    users = run.state.setdefault("user_ids", [])
    for index in range(count):
        user_id = str(uuid.uuid4())
        body = {
            "aps": {"type": USER_TYPE, "id": user_id},
            "tenant": {"aps": {"id": run.state["tenant_id"]}},
            "login": f"user{index}-{user_id[:8]}",
            "name": f"User {index}",
            "email": f"user{index}@example.com",
        }
        if run.call("add-users", "POST", "users", body).ok:
            users.append(user_id)


def read_usage(run: ScenarioRun) -> None:
    result = run.call("read-usage", "GET", f"tenants/{run.state['tenant_id']}", expected=(200,))
    if isinstance(result.body, dict):
        run._print(f"read-usage: USERS = {result.body.get('USERS')}")


def switch(run: ScenarioRun, action: str) -> None:
    run.call(action, "POST", f"tenants/{run.state['tenant_id']}/{action}", {}, poll=True)


def unprovision(run: ScenarioRun) -> None:
    for key in ("tenant_id", "async_tenant_id"):
        if key in run.state:
            run.call("unprovision", "DELETE", f"tenants/{run.state[key]}", poll=True)


def remove_instance(run: ScenarioRun) -> None:
    run.call("remove-instance", "DELETE", f"app/{run.state['instance_id']}")


def lifecycle(run: ScenarioRun) -> None:
    """Everything in order: the connector's whole life as a provider sees it."""
    create_instance(run)
    provision_tenant(run)
    provision_tenant(run, asynchronous=True)
    add_users(run)
    read_usage(run)
    switch(run, "disable")
    switch(run, "enable")
    unprovision(run)
    remove_instance(run)


SCENARIOS: dict[str, tuple[Callable[[ScenarioRun], None], str]] = {
    "create-instance": (create_instance, "POST /app: the controller creates the application instance"),
    "provision-tenant": (provision_tenant, "POST /tenants: a named customer with an admin user"),
    "provision-tenant-async": (
        lambda run: provision_tenant(run, asynchronous=True),
        "POST /tenants, polled with APS-Request-Phase: async until done",
    ),
    "add-users": (add_users, "POST /users: two users in the tenant"),
    "read-usage": (read_usage, "GET /tenants/{id}: the USERS usage counter"),
    "disable": (lambda run: switch(run, "disable"), "POST /tenants/{id}/disable"),
    "enable": (lambda run: switch(run, "enable"), "POST /tenants/{id}/enable"),
    "unprovision": (unprovision, "DELETE /tenants/{id} (both tenants)"),
    "remove-instance": (remove_instance, "DELETE /app/{id}"),
    "lifecycle": (lifecycle, "all of the above, in order"),
}
