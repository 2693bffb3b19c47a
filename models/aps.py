"""APS tables: application instances, the tenant/user resources they provision, and durable async jobs."""

from __future__ import annotations

import peewee as pw

from models.db import BaseModel, utcnow
from models.tables import Organization, User

TENANT = "tenant"
USER = "user"
ACTIVE = "active"
DISABLED = "disabled"
REMOVED = "removed"

PENDING = "pending"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
JOB_STATES = (PENDING, RUNNING, DONE, FAILED)


def _one_of(column: str, values: tuple[str, ...]) -> pw.Check:
    return pw.Check(f"{column} in ({', '.join(repr(v) for v in values)})")


class ApsInstance(BaseModel):
    """One APS application instance: the controller that created it and the consumer key bound to it.

    Neither APS-Controller-URI nor APS-Instance-ID is covered by the OAuth signature (aps.md §2.4, §3.1):
    the URI is pinned here at creation and the consumer key is bound here, one live instance per key.
    """

    instance_id = pw.CharField(primary_key=True, max_length=36)  # APS-Instance-ID (lower-case UUID)
    aps_id = pw.CharField(max_length=36, unique=True)  # the app resource's aps.id (usually the same)
    aps_type = pw.CharField(max_length=255)
    controller_uri = pw.CharField(max_length=512)  # pinned, normalized, always ending with '/'
    consumer_key = pw.CharField(max_length=128, unique=True)
    # The secret the controller last signed with: callbacks are signed with it, so a rotation that the
    # controller has not picked up yet never breaks them (aps.md §9, open point on secret push).
    secret_id = pw.IntegerField(null=True)
    organization = pw.ForeignKeyField(Organization, backref="aps_instances", on_delete="RESTRICT", index=True)
    settings = pw.TextField(default="{}")  # the app resource's global settings (JSON object)
    # "removed" is a tombstone: a repeated DELETE still answers 204; a new creation with the key replaces it.
    status = pw.CharField(max_length=16, default=ACTIVE, constraints=[_one_of("status", (ACTIVE, REMOVED))])
    # The last APS upgrade call: the package version the controller upgraded the instance from, and when.
    upgraded_from = pw.CharField(max_length=64, null=True)
    upgraded_at = pw.DateTimeField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "aps_instance"


class ApsResource(BaseModel):
    """A tenant or user the controller provisioned through an instance, keyed by its APS id."""

    aps_id = pw.CharField(primary_key=True, max_length=36)
    kind = pw.CharField(max_length=16, constraints=[_one_of("kind", (TENANT, USER))])
    aps_type = pw.CharField(max_length=255)
    instance = pw.ForeignKeyField(ApsInstance, backref="resources", on_delete="RESTRICT")
    # A tenant's customer organization; a user's row in its tenant's organization.
    organization = pw.ForeignKeyField(Organization, null=True, on_delete="CASCADE", index=True)
    user = pw.ForeignKeyField(User, null=True, on_delete="CASCADE", index=True)
    tenant = pw.ForeignKeyField("self", null=True, backref="members", on_delete="CASCADE", index=True)
    status = pw.CharField(max_length=16, default=ACTIVE, constraints=[_one_of("status", (ACTIVE, DISABLED))])
    properties = pw.TextField(default="{}")  # JSON: what the controller sent, minus aps metadata
    limits = pw.TextField(default="{}")  # JSON: {"USERS": 10}
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "aps_resource"
        indexes = ((("instance", "kind"), False),)


class ApsJob(BaseModel):
    """Durable work of one operation on one resource (aps.md §4.2): survives restarts, resumes by lease.

    ``generation`` grows each time the operation is requested again; a runner completes a job only for the
    generation it claimed, so a request that arrives mid-run is never lost.
    """

    id = pw.BigAutoField()
    aps_id = pw.CharField(max_length=36)
    operation = pw.CharField(max_length=48)
    instance_id = pw.CharField(max_length=36, index=True)
    state = pw.CharField(max_length=16, default=PENDING, constraints=[_one_of("state", JOB_STATES)])
    generation = pw.IntegerField(default=1)
    attempts = pw.IntegerField(default=0)
    payload = pw.TextField(default="{}")  # the validated request input (JSON)
    transaction_id = pw.CharField(max_length=128, null=True)
    result_status = pw.IntegerField(null=True)
    result = pw.TextField(null=True)  # the final answer's JSON body
    error = pw.TextField(null=True)  # safe to show the controller; never a secret
    next_attempt_at = pw.DateTimeField(default=utcnow)
    lease_until = pw.DateTimeField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "aps_job"
        indexes = (
            # The poll's lookup: one job per instance, resource and operation. Keyed by instance, so another
            # instance's request about the same aps.id can never hold (or block) this instance's job.
            (("instance_id", "aps_id", "operation"), True),
            (("state", "next_attempt_at"), False),  # the runner: pending jobs that are due
            (("state", "lease_until"), False),  # the runner: running jobs whose owner died
            (("state", "updated_at"), False),  # retention purge of finished jobs
        )


APS_MODELS: list[type[BaseModel]] = [ApsInstance, ApsResource, ApsJob]
