"""The outbox table: each alert or workload is committed here before any delivery attempt."""

from __future__ import annotations

import datetime as dt

import peewee as pw

from models.db import BaseModel, utcnow

ALERT = "alert"
WORKLOAD = "workload"
PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"
KINDS = (ALERT, WORKLOAD)
STATUSES = (PENDING, DELIVERED, DEAD)
ERROR_LIMIT = 1000


class OutboxItem(BaseModel):
    """One item for the Acronis API. Delivery order per tenant is the id order."""

    id = pw.BigAutoField()
    kind = pw.CharField(max_length=16, constraints=[pw.Check(f"kind in ('{ALERT}', '{WORKLOAD}')")])
    tenant_id = pw.CharField(max_length=36)  # the Acronis customer tenant
    datacenter_url = pw.CharField(max_length=255)  # normalized; credentials go only to configured DCs
    payload = pw.TextField()  # the JSON object sent (an alert, or one item of a workloads batch)
    status = pw.CharField(
        max_length=16,
        default=PENDING,
        constraints=[pw.Check(f"status in ('{PENDING}', '{DELIVERED}', '{DEAD}')")],
    )
    attempts = pw.IntegerField(default=0)
    next_attempt_at = pw.DateTimeField(default=utcnow)
    last_error = pw.TextField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    delivered_at = pw.DateTimeField(null=True)
    remote_id = pw.CharField(max_length=64, null=True)  # the alert id the API returned: proof of delivery
    # Idempotency key of the producer (spool: file digest + line); NULLs never collide on any backend.
    source = pw.CharField(max_length=191, null=True, unique=True)
    # Lease: a worker owns a claimed item until lease_expires; another worker may take it over after that.
    claimed_by = pw.CharField(max_length=64, null=True)
    lease_expires = pw.DateTimeField(null=True)

    class Meta:
        table_name = "outbox_item"
        indexes = (
            (("status", "datacenter_url", "id"), False),  # the worker's claim query, in delivery order
            (("tenant_id", "status", "id"), False),  # per-tenant order and the operator's listings
        )

    @classmethod
    def pending_in(
        cls, datacenter_url: str, limit: int, due_by: dt.datetime | None = None, *, skip_locked: bool = False
    ) -> list[OutboxItem]:
        """The oldest pending items of one DC (only those due by ``due_by`` if given), in id order.

        ``skip_locked`` (inside a transaction, on a backend with row locks): lock the rows returned and
        leave out those another transaction holds (``FOR UPDATE SKIP LOCKED``).
        """
        where = (cls.status == PENDING) & (cls.datacenter_url == datacenter_url)
        if due_by is not None:
            where &= cls.next_attempt_at <= due_by
        query = cls.select().where(where).order_by(cls.id).limit(limit)
        if skip_locked:
            query = query.for_update(skip_locked=True)
        return list(query)

    @classmethod
    def pending_ids(cls, datacenter_url: str, tenants: list[str], up_to: int) -> dict[str, list[int]]:
        """tenant -> ids of its pending items on this DC up to ``up_to``, in order, due or not, leased
        or not: a worker may only send a prefix of this sequence (its first id is the tenant's head)."""
        query = (
            cls.select(cls.tenant_id, cls.id)
            .where(
                (cls.status == PENDING)
                & (cls.datacenter_url == datacenter_url)
                & cls.tenant_id.in_(tenants)
                & (cls.id <= up_to)
            )
            .order_by(cls.id)
            .tuples()
        )
        pending: dict[str, list[int]] = {}
        for tenant, item_id in query:
            pending.setdefault(tenant, []).append(int(item_id))
        return pending

    @classmethod
    def defer_tenant(cls, datacenter_url: str, tenant_id: str, after_id: int, until: dt.datetime) -> int:
        """Hold a tenant's later items back with its failed head, so they leave the due window."""
        query = cls.update(next_attempt_at=until).where(
            (cls.status == PENDING)
            & (cls.datacenter_url == datacenter_url)
            & (cls.tenant_id == tenant_id)
            & (cls.id > after_id)
            & (cls.next_attempt_at < until)
        )
        return int(query.execute())

    @classmethod
    def pending_datacenters(cls) -> list[str]:
        query = cls.select(cls.datacenter_url).where(cls.status == PENDING).distinct()
        return sorted(row.datacenter_url for row in query)

    @classmethod
    def claim(cls, ids: list[int], worker: str, now: dt.datetime, until: dt.datetime) -> int:
        """Lease ``ids`` to ``worker`` unless another live lease holds them; returns the rows taken."""
        free = cls.lease_expires.is_null() | (cls.lease_expires < now) | (cls.claimed_by == worker)
        query = cls.update(claimed_by=worker, lease_expires=until).where(
            cls.id.in_(ids) & (cls.status == PENDING) & free
        )
        return int(query.execute())

    @classmethod
    def lease_holders(cls) -> list[str]:
        """Every worker identity that holds a lease now."""
        query = cls.select(cls.claimed_by).where(cls.claimed_by.is_null(False)).distinct()
        return [row.claimed_by for row in query]

    @classmethod
    def release_leases(cls, worker: str) -> int:
        """Forget the leases a previous run of ``worker`` held (it was killed; nothing else owns them)."""
        query = cls.update(claimed_by=None, lease_expires=None).where(cls.claimed_by == worker)
        return int(query.execute())

    @classmethod
    def counts(cls) -> dict[tuple[str, str], int]:
        """(tenant_id, status) -> number of items."""
        query = cls.select(cls.tenant_id, cls.status, pw.fn.COUNT(cls.id).alias("n")).group_by(
            cls.tenant_id, cls.status
        )
        return {(row.tenant_id, row.status): int(row.n) for row in query}


def truncate(text: str, limit: int = ERROR_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
