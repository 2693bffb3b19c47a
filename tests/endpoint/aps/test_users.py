"""Users of a tenant: idempotent creation, limits, disabled tenants, and a usage sync after each change."""

from __future__ import annotations

import uuid

import pytest

from endpoint.aps import tenants, users
from endpoint.aps.payloads import TenantInput, UserInput, UserUpdate
from endpoint.errors import Conflict, Forbidden, NotFound
from models import ApsJob, ApsResource, User
from models.aps import PENDING
from tests.support.aps_builders import TENANT_TYPE, USER_TYPE, Bound


def provision(bound: Bound, limit: int | None = None) -> str:
    aps_id = str(uuid.uuid4())
    tenants.provision(
        bound.instance.instance_id, TenantInput(aps_id, TENANT_TYPE, "T", None, limit, None), "T"
    )
    return aps_id


def spec(tenant_id: str, login: str = "ann", aps_id: str | None = None) -> UserInput:
    return UserInput(aps_id or str(uuid.uuid4()), USER_TYPE, tenant_id, login, "Ann", "ann@example.com")


def usage_job(tenant_id: str) -> ApsJob | None:
    return ApsJob.get_or_none((ApsJob.aps_id == tenant_id) & (ApsJob.operation == users.USAGE_SYNC))


def test_create_is_idempotent_and_schedules_a_usage_sync(bound: Bound) -> None:
    tenant_id = provision(bound)
    user = spec(tenant_id, login="Ann")
    created = users.create(bound.ctx(), user)
    assert created.status == 201 and created.body is not None and created.body["login"] == "ann"
    again = users.create(bound.ctx(), user)
    assert again.status == 200 and again.body == created.body
    assert User.select().count() == 1
    job = usage_job(tenant_id)
    assert job is not None and job.state == PENDING and job.transaction_id == "tx-0001"


def test_update_get_delete(bound: Bound) -> None:
    tenant_id = provision(bound)
    user = spec(tenant_id)
    users.create(bound.ctx(), user)
    body = users.update(bound.ctx(), user.aps_id, UserUpdate("Ann B", None)).body
    assert body is not None and (body["name"], body["email"]) == ("Ann B", "ann@example.com")
    assert users.get(bound.ctx(), user.aps_id).body == body
    generation = usage_job(tenant_id).generation  # type: ignore[union-attr]
    assert users.delete(bound.ctx(), user.aps_id).status == 204
    assert User.select().count() == 0 and ApsResource.select().where(ApsResource.kind == "user").count() == 0
    assert usage_job(tenant_id).generation == generation + 1  # type: ignore[union-attr]
    assert users.delete(bound.ctx(), user.aps_id).status == 204
    with pytest.raises(NotFound):
        users.update(bound.ctx(), user.aps_id, UserUpdate("x", None))


def test_the_users_limit_is_enforced(bound: Bound) -> None:
    tenant_id = provision(bound, limit=1)
    users.create(bound.ctx(), spec(tenant_id, "one"))
    with pytest.raises(Conflict):
        users.create(bound.ctx(), spec(tenant_id, "two"))


def test_unknown_or_disabled_tenants_refuse_users(bound: Bound) -> None:
    with pytest.raises(NotFound):
        users.create(bound.ctx(), spec(str(uuid.uuid4())))
    tenant_id = provision(bound)
    tenants.set_enabled(bound.instance.instance_id, tenant_id, False)
    with pytest.raises(Forbidden):
        users.create(bound.ctx(), spec(tenant_id))
    assert User.select().count() == 0


def test_logins_stay_globally_unique(bound: Bound) -> None:
    tenant_id = provision(bound)
    users.create(bound.ctx(), spec(tenant_id, "Ann"))
    with pytest.raises(Conflict):
        users.create(bound.ctx(), spec(tenant_id, "ANN"))


def test_users_changed_only_for_own_tenants(bound: Bound) -> None:
    tenant_id = provision(bound)
    assert users.users_changed(bound.ctx(), tenant_id.upper())
    assert usage_job(tenant_id) is not None
    assert not users.users_changed(bound.ctx(), str(uuid.uuid4()))
