"""Users of a provisioned tenant (synchronous database work); each change schedules a usage sync job."""

from __future__ import annotations

import logging
from typing import Any

from endpoint.aps import jobs
from endpoint.aps.context import ApsContext, Outcome, loads_object
from endpoint.aps.payloads import UserInput, UserUpdate
from endpoint.aps.tenants import TENANT_NOT_FOUND, USERS, find_tenant
from endpoint.errors import Conflict, Forbidden, NotFound
from endpoint.tenancy.users import USER_NOT_FOUND_MESSAGE, count_users, delete_user, insert_user, update_user
from models import ApsResource, User, db
from models.aps import ACTIVE, USER

log = logging.getLogger(__name__)

USAGE_SYNC = "tenants.usage"  # background job: push the tenant's USERS usage to the controller


def user_body(row: ApsResource, user: User) -> dict[str, Any]:
    return {
        "aps": {"type": row.aps_type, "id": row.aps_id},
        "tenant": {"aps": {"id": row.tenant_id}},
        "userId": user.id,
        "login": user.login,
        "name": user.name,
        "email": user.email,
    }


def _user(ctx: ApsContext, aps_id: str) -> ApsResource | None:
    row = ApsResource.get_or_none((ApsResource.aps_id == aps_id.lower()) & (ApsResource.kind == USER))
    if row is not None and row.instance_id != ctx.instance_id:
        raise NotFound(USER_NOT_FOUND_MESSAGE, reason="user of another instance")
    return row


def _sync_usage(ctx: ApsContext, tenant_aps_id: str) -> None:
    jobs.touch(ctx.instance_id, tenant_aps_id, USAGE_SYNC, {}, ctx.transaction_id)


def create(ctx: ApsContext, spec: UserInput) -> Outcome:
    """Create the user in its tenant's organization; a repeat returns the same user (200).

    :raise NotFound: unknown tenant. :raise Forbidden: the tenant is disabled.
    :raise Conflict: USERS limit reached, login taken, or aps.id held by another resource.
    """
    with db.atomic():
        existing = ApsResource.get_or_none(ApsResource.aps_id == spec.aps_id)
        if existing is not None:
            if existing.instance_id != ctx.instance_id or existing.kind != USER:
                raise Conflict("This aps.id is already in use.", reason="aps.id held by another resource")
            return Outcome(200, user_body(existing, User.get_by_id(existing.user_id)))
        tenant = find_tenant(ctx.instance_id, spec.tenant_id)
        if tenant is None:
            raise NotFound(TENANT_NOT_FOUND, reason="user for an unknown tenant")
        if tenant.status != ACTIVE:
            raise Forbidden("The tenant is disabled.", reason="user for a disabled tenant")
        limit = loads_object(tenant.limits).get(USERS)
        if limit is not None and count_users(tenant.organization_id) >= int(limit):
            raise Conflict(f"The tenant's user limit ({limit}) is reached.", reason="USERS limit")
        user = insert_user(tenant.organization_id, spec.login, spec.name, spec.email)
        row = ApsResource.create(
            aps_id=spec.aps_id,
            kind=USER,
            aps_type=spec.aps_type,
            instance=ctx.instance_id,
            organization=tenant.organization_id,
            user=user,
            tenant=tenant.aps_id,
        )
        _sync_usage(ctx, tenant.aps_id)
    log.info("user %s created in tenant %s", spec.aps_id, tenant.aps_id, extra=ctx.log_extra)
    return Outcome(201, user_body(row, user))


def update(ctx: ApsContext, aps_id: str, change: UserUpdate) -> Outcome:
    """:raise NotFound:"""
    with db.atomic():
        row = _user(ctx, aps_id)
        if row is None:
            raise NotFound(USER_NOT_FOUND_MESSAGE)
        fields = {
            key: value for key, value in (("name", change.name), ("email", change.email)) if value is not None
        }
        update_user(row.user_id, **fields)
        user = User.get_by_id(row.user_id)
    return Outcome(200, user_body(row, user))


def delete(ctx: ApsContext, aps_id: str) -> Outcome:
    """Delete the user; an unknown one is already gone (204). :raise NotFound: another instance's user."""
    with db.atomic():
        row = _user(ctx, aps_id)
        if row is None:
            return Outcome(204)
        tenant_aps_id = row.tenant_id
        user_id = row.user_id
        row.delete_instance()
        delete_user(user_id)
        if tenant_aps_id:
            _sync_usage(ctx, tenant_aps_id)
    log.info("user %s deleted", aps_id, extra=ctx.log_extra)
    return Outcome(204)


def get(ctx: ApsContext, aps_id: str) -> Outcome:
    """:raise NotFound:"""
    row = _user(ctx, aps_id)
    if row is None:
        raise NotFound(USER_NOT_FOUND_MESSAGE)
    return Outcome(200, user_body(row, User.get_by_id(row.user_id)))


def users_changed(ctx: ApsContext, tenant_aps_id: str) -> bool:
    """onUsersChange: schedule a usage sync for a tenant of this instance; False when it is unknown."""
    with db.atomic():
        if find_tenant(ctx.instance_id, tenant_aps_id) is None:
            return False
        _sync_usage(ctx, tenant_aps_id.lower())
    return True
