"""What the drills wrote, and whether the database agrees: every answered write once, no half-applied one.

Three kinds of write, each with a key the client chose, so the database can be searched for it:

- ``user_write``: a callback whose login is ``w<request_id hex>``; its effect is the user, its record the
  request-ledger row (same transaction);
- ``tenant``: ``POST /tenants`` for aps.id X named ``t-X``; its effect is the customer organization and the
  tenant resource, its record the ``tenants.provision`` job (a durable job that a restart resumes);
- ``aps_user``: ``POST /users`` for aps.id X with login ``u<X hex>``; the user and its resource.

An answered 2xx (202 included: the job was accepted) must be visible exactly once; a 4xx must have left
nothing; a write without an answer (or a 5xx, whose commit may or may not have happened) must be there
entirely or not at all. The ledger must match the data both ways, and no job may be left pending or
running once the endpoint has settled.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bench import signed_traffic as st
from models import ApsJob, ApsResource, Organization, RequestLedger, User, init_database
from models.aps import DONE, PENDING, RUNNING, TENANT
from models.aps import USER as APS_USER_KIND
from models.db import DatabaseSettings

USER_WRITE, TENANT_WRITE, APS_USER = "user_write", "tenant", "aps_user"


@dataclass
class Write:
    kind: str
    key: str  # the request_id (user_write) or the aps.id
    tenant: str | None = None  # aps_user: the tenant's aps.id
    status: int | None = None  # None: sent, but no answer came
    retried: int | None = None  # the status of the re-send after the drill (unanswered writes only)

    def request(self, host: str, controller_uri: str) -> bytes:
        """The request, freshly signed: a re-send carries the same request_id or aps.id."""
        if self.kind == USER_WRITE:
            return st.user_write(host, self.key)
        if self.kind == TENANT_WRITE:
            return st.aps(host, "POST", "/tenants", st.tenant_body(self.key), controller_uri)
        assert self.tenant is not None
        return st.aps(host, "POST", "/users", st.user_body(self.key, self.tenant), controller_uri)

    @property
    def outcome(self) -> str:
        if self.status is None or self.status >= 500:
            return "unknown"
        return "applied" if 200 <= self.status < 300 else "refused"


@dataclass
class State:
    """What the database holds of the drill's writes (counts, so a duplicate would show)."""

    w_users: Counter[str] = field(default_factory=Counter)  # login -> rows
    ledger: Counter[str] = field(default_factory=Counter)  # user_write request_id -> rows
    ledger_pending: int = 0
    tenants: Counter[str] = field(default_factory=Counter)  # aps.id -> tenant resources with an org
    tenant_orgs: Counter[str] = field(default_factory=Counter)  # aps.id (from the name t-X) -> orgs
    aps_users: Counter[str] = field(default_factory=Counter)  # aps.id -> user resources with a user
    u_users: Counter[str] = field(default_factory=Counter)  # login -> rows
    provision_jobs: dict[str, str] = field(default_factory=dict)  # aps.id -> job state
    unfinished_jobs: Counter[str] = field(default_factory=Counter)  # operation -> pending/running jobs
    failed_jobs: Counter[str] = field(default_factory=Counter)


def read_state(url: str) -> State:
    database = init_database(DatabaseSettings(url=url))
    state = State()
    try:
        with database.connection_context():
            for (login,) in User.select(User.login).where(User.login.startswith("w")).tuples():
                state.w_users[login] += 1
            for (login,) in User.select(User.login).where(User.login.startswith("u")).tuples():
                state.u_users[login] += 1
            rows = RequestLedger.select(RequestLedger.request_id, RequestLedger.status).where(
                RequestLedger.callback_id.contains("user_write")
            )
            for request_id, status in rows.tuples():
                state.ledger[request_id] += 1
                state.ledger_pending += status == 0
            names = Organization.select(Organization.name).where(Organization.name.startswith("t-"))
            for (name,) in names.tuples():
                state.tenant_orgs[name[2:]] += 1
            resources = ApsResource.select(ApsResource.aps_id, ApsResource.kind).where(
                (ApsResource.organization.is_null(False) & (ApsResource.kind == TENANT))
                | (ApsResource.user.is_null(False) & (ApsResource.kind == APS_USER_KIND))
            )
            for aps_id, kind in resources.tuples():
                (state.tenants if kind == TENANT else state.aps_users)[aps_id] += 1
            jobs = ApsJob.select(ApsJob.aps_id, ApsJob.operation, ApsJob.state).tuples()
            for aps_id, operation, job_state in jobs:
                if operation == "tenants.provision":
                    state.provision_jobs[aps_id] = job_state
                if job_state in (PENDING, RUNNING):
                    state.unfinished_jobs[operation] += 1
                elif job_state != DONE:
                    state.failed_jobs[operation] += 1
    finally:
        database.close_all()
    return state


def parts(write: Write, state: State) -> list[int]:
    """How many rows of each part of the write's effect and record exist."""
    if write.kind == USER_WRITE:
        return [state.w_users["w" + write.key.replace("-", "")], state.ledger[write.key]]
    if write.kind == TENANT_WRITE:
        done = int(state.provision_jobs.get(write.key) == DONE)
        return [state.tenants[write.key], state.tenant_orgs[write.key], done]
    return [state.aps_users[write.key], state.u_users["u" + write.key.replace("-", "")]]


def audit(writes: list[Write], state: State) -> list[tuple[bool, str]]:
    """Verdicts: (ok, text) per rule."""
    by_outcome: dict[str, list[Write]] = {"applied": [], "refused": [], "unknown": []}
    for write in writes:
        by_outcome[write.outcome].append(write)
    twice = [w for w in writes if any(n > 1 for n in parts(w, state))]
    missing = [w for w in by_outcome["applied"] if any(n != 1 for n in parts(w, state))]
    refused_present = [w for w in by_outcome["refused"] if any(parts(w, state))]
    unknown = by_outcome["unknown"]
    half = [w for w in unknown if len(set(parts(w, state))) > 1]
    fully = sum(1 for w in unknown if all(n == 1 for n in parts(w, state)))
    user_logins = set(state.w_users)
    ledger_logins = {"w" + request_id.replace("-", "") for request_id in state.ledger}
    phantom = user_logins - {"w" + w.key.replace("-", "") for w in writes if w.kind == USER_WRITE}
    orphan_orgs = set(state.tenant_orgs) - set(state.tenants)
    kinds = dict(Counter(w.kind for w in by_outcome["applied"]))
    return [
        (
            not missing,
            f"answered 2xx: {len(by_outcome['applied'])} of {len(writes)} writes {kinds}; not there exactly "
            f"once: {len(missing)} {_sample(missing)}",
        ),
        (not twice, f"writes visible more than once: {len(twice)} {_sample(twice)}"),
        (
            not half,
            f"no answer (or 5xx): {len(unknown)}, of which fully applied {fully}, not at all "
            f"{len(unknown) - fully - len(half)}, half-applied {len(half)} {_sample(half)}",
        ),
        (
            not refused_present,
            f"answered 4xx: {len(by_outcome['refused'])}, that left something: {len(refused_present)}",
        ),
        (
            ledger_logins == user_logins and state.ledger_pending == 0 and not phantom,
            f"ledger matches the data: {len(state.ledger)} user_write ledger rows, {len(user_logins)} users, "
            f"{len(ledger_logins ^ user_logins)} without their counterpart, {state.ledger_pending} pending "
            f"rows, {len(phantom)} users nobody asked for",
        ),
        (not orphan_orgs, f"tenant organizations without their tenant resource: {len(orphan_orgs)}"),
        (
            not state.unfinished_jobs,
            f"APS jobs still pending or running: {dict(state.unfinished_jobs) or 0} (failed for good: "
            f"{dict(state.failed_jobs) or 0})",
        ),
    ]


def _sample(writes: list[Write]) -> str:
    return "" if not writes else "e.g. " + ", ".join(f"{w.kind} {w.key} ({w.status})" for w in writes[:3])
