"""The operations a job can run: an optional outbound step (no database open), then a database step.

The outbound step talks to the controller (read the subscriber's account, push usage); the database step
applies the effect in the same transaction that marks the job done, so a crash never leaves an effect
without its recorded answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import peewee as pw

from endpoint.aps import tenants
from endpoint.aps.context import Outcome
from endpoint.aps.jobs import Ticket
from endpoint.aps.payloads import AdminInput, TenantInput, TenantUpdate
from endpoint.aps.users import USAGE_SYNC
from endpoint.tenancy.users import count_users
from models import ApsJob, db
from models.aps import RUNNING
from models.db import unit_of_work, utcnow
from proxy.controller import ControllerClient
from proxy.errors import ApiRejected, ConnectorError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Operation:
    # (ticket, controller client factory) -> data for apply; may raise ConnectorError (retried later).
    prepare: Callable[[Ticket, Callable[[], ControllerClient]], Any] | None
    # (ticket, prepared data) -> the final answer; runs inside the job's transaction.
    apply: Callable[[Ticket, Any], Outcome]


def tenant_input(payload: dict[str, Any]) -> TenantInput:
    admin = payload.get("admin")
    return TenantInput(**{**payload, "admin": AdminInput(**admin) if admin else None})


def tenant_payload(tenant: TenantInput) -> dict[str, Any]:
    admin = tenant.admin
    return {
        "aps_id": tenant.aps_id,
        "aps_type": tenant.aps_type,
        "name": tenant.name,
        "account_id": tenant.account_id,
        "users_limit": tenant.users_limit,
        "admin": {"login": admin.login, "name": admin.name, "email": admin.email} if admin else None,
    }


def _tenant_name(ticket: Ticket, controller: Callable[[], ControllerClient]) -> str:
    """The customer's name: from the request, else the subscriber account's company name (read from
    the controller as the tenant resource), else a placeholder."""
    tenant = tenant_input(ticket.payload)
    if tenant.name:
        return tenant.name
    fallback = f"Customer {tenant.aps_id[:8]}"
    if not tenant.account_id:
        return fallback
    with unit_of_work():
        if tenants.find_tenant(ticket.instance_id, tenant.aps_id) is not None:
            return fallback  # already provisioned: apply returns it unchanged
    try:
        account = controller().get_resource(
            tenant.account_id, transaction_id=ticket.transaction_id, act_as=tenant.aps_id
        )
    except ApiRejected as e:  # the controller will not show it: provision anyway, under a placeholder
        log.warning(
            "tenant %s: account %s not readable (%s)",
            tenant.aps_id,
            tenant.account_id,
            e,
            extra=ticket.log_extra,
        )
        return fallback
    name = account.get("companyName") or account.get("name")
    return name.strip()[:255] if isinstance(name, str) and name.strip() else fallback


class UsagePushInFlight(ConnectorError):
    """The tenant's usage is on its way to the controller: its DELETE waits, then runs again (retried)."""


# How long an unprovisioning waits for a usage push of its tenant that is on the wire: a push is one PUT
# (the controller client's retry budget and timeouts bound it); past this the job is retried later.
USAGE_PUSH_WAIT = 30.0


def _usage_push(ticket: Ticket, *, lock: bool = False) -> ApsJob | None:
    """The tenant's usage job while it runs (a runner holds it, its lease not run out), else None. With
    ``lock`` (inside the deleting transaction) its row is locked on backends with row locks, so a runner
    cannot claim it between this check and the commit; SQLite's writer lock does that by itself."""
    query = ApsJob.select(ApsJob.state, ApsJob.lease_until).where(
        (ApsJob.instance_id == ticket.instance_id)
        & (ApsJob.aps_id == ticket.aps_id)
        & (ApsJob.operation == USAGE_SYNC)
    )
    if lock and isinstance(db.obj, pw.PostgresqlDatabase | pw.MySQLDatabase):
        query = query.for_update()
    job = query.first()
    running = job is not None and job.state == RUNNING and job.lease_until and job.lease_until > utcnow()
    return job if running else None


def _after_usage_push(ticket: Ticket, controller: Callable[[], ControllerClient]) -> None:
    """No usage push for a tenant may reach the controller after its DELETE was answered: wait (outside any
    transaction) for one on the wire; a push not yet started finds no tenant afterwards and sends nothing."""
    deadline = time.monotonic() + USAGE_PUSH_WAIT
    while time.monotonic() < deadline:
        with unit_of_work():
            if _usage_push(ticket) is None:
                return
        time.sleep(0.05)


def _unprovision(ticket: Ticket, _: Any) -> Outcome:
    if _usage_push(ticket, lock=True) is not None:  # claimed after the wait: try again later
        raise UsagePushInFlight(f"tenant {ticket.aps_id}: a usage push is on its way to the controller")
    return tenants.unprovision(ticket.instance_id, ticket.aps_id, extra=ticket.log_extra)


def _push_usage(ticket: Ticket, controller: Callable[[], ControllerClient]) -> Outcome:
    """PUT the tenant's USERS usage on the controller (after user changes)."""
    with unit_of_work():
        row = tenants.find_tenant(ticket.instance_id, ticket.aps_id)
        count = count_users(row.organization_id) if row is not None else None
    if count is None:
        return Outcome(204)  # unprovisioned meanwhile: nothing to report
    body = {"aps": {"id": ticket.aps_id}, tenants.USERS: {"usage": count}}
    controller().put_resource(ticket.aps_id, body, transaction_id=ticket.transaction_id)
    log.info("tenant %s: usage %d pushed to the controller", ticket.aps_id, count, extra=ticket.log_extra)
    return Outcome(200, {tenants.USERS: {"usage": count}})


OPERATIONS: dict[str, Operation] = {
    "tenants.provision": Operation(
        _tenant_name,
        lambda t, name: tenants.provision(t.instance_id, tenant_input(t.payload), name, extra=t.log_extra),
    ),
    "tenants.configure": Operation(
        None, lambda t, _: tenants.configure(t.instance_id, t.aps_id, TenantUpdate(**t.payload))
    ),
    "tenants.unprovision": Operation(_after_usage_push, _unprovision),
    "tenants.disable": Operation(
        None, lambda t, _: tenants.set_enabled(t.instance_id, t.aps_id, False, extra=t.log_extra)
    ),
    "tenants.enable": Operation(
        None, lambda t, _: tenants.set_enabled(t.instance_id, t.aps_id, True, extra=t.log_extra)
    ),
    USAGE_SYNC: Operation(_push_usage, lambda t, outcome: outcome),
}
