"""Application instances: key-to-instance binding, controller-URI pinning, create/configure/remove/get.

Synchronous database functions (run through DatabaseRunner). Binding rules (aps.md §2.4 step 6-7,
security-checklist §11 items 52-53): a key signs for exactly one live instance (401 otherwise); the
APS-Controller-URI must equal the one pinned at creation (400 otherwise), and nothing is ever called on
a URI that failed that check.
"""

from __future__ import annotations

import logging

import peewee as pw

from endpoint.aps.context import ApsContext, Outcome, dumps, loads_object
from endpoint.aps.headers import ApsHeaders
from endpoint.aps.payloads import AppInput
from endpoint.auth.identity import VerifiedConsumer
from endpoint.errors import AuthenticationFailed, Conflict, NotFound, PayloadError, Unavailable
from models import PARTNER, ApsInstance, ApsResource, Organization, db
from models.aps import ACTIVE, REMOVED, TENANT
from models.db import serialized_write, utcnow

log = logging.getLogger(__name__)

URI_MISMATCH = "Bad request: APS-Controller-URI differs from the controller this instance was created by."
INSTANCE_NOT_FOUND = "Application instance not found."


def context_for(consumer: VerifiedConsumer, headers: ApsHeaders, row: ApsInstance | None) -> ApsContext:
    return ApsContext(
        instance_id=headers.instance_id,
        controller_uri=headers.controller_uri,
        consumer_key=consumer.key,
        secret_id=consumer.secret_id,
        transaction_id=headers.transaction_id,
        phase=headers.phase,
        organization_id=row.organization_id if row is not None else "",
        app_id=row.aps_id if row is not None else "",
    )


def authorize(consumer: VerifiedConsumer, headers: ApsHeaders, *, allow_removed: bool = False) -> ApsContext:
    """The context of a request on an existing instance.

    :raise AuthenticationFailed: the key is not the one bound to APS-Instance-ID (401).
    :raise PayloadError: APS-Controller-URI is not the pinned one (400).
    :raise NotFound: the instance was removed (unless ``allow_removed``).
    """
    row = ApsInstance.get_or_none(ApsInstance.instance_id == headers.instance_id)
    if row is None or row.consumer_key != consumer.key:
        raise AuthenticationFailed(reason="APS-Instance-ID is not bound to the signing consumer key")
    if row.controller_uri != headers.controller_uri:
        raise PayloadError(URI_MISMATCH, reason="APS-Controller-URI differs from the pinned one")
    if row.status == REMOVED and not allow_removed:
        raise NotFound(INSTANCE_NOT_FOUND, reason="instance removed")
    if row.secret_id != consumer.secret_id and row.status == ACTIVE:
        # Remember which secret the controller signs with: our callbacks use the same one (rotation).
        with serialized_write():
            ApsInstance.update(secret_id=consumer.secret_id).where(
                ApsInstance.instance_id == row.instance_id
            ).execute()
    return context_for(consumer, headers, row)


def resolve_partner(partner_id: str) -> Organization:
    """The partner organization instances serve: the configured one, else the only top-level partner.

    :raise Unavailable: none or several candidates (a configuration problem on our side).
    """
    query = Organization.select().where(Organization.kind == PARTNER, Organization.active == True)  # noqa: E712
    if partner_id:
        candidates = list(query.where(Organization.id == partner_id))
    else:
        candidates = list(query.where(Organization.parent.is_null()).limit(2))
    if len(candidates) != 1:
        raise Unavailable(
            "Connector not configured: no partner organization for APS instances.",
            reason="aps.partner_id unset and not exactly one top-level partner"
            if not partner_id
            else "aps.partner_id names no active partner",
        )
    return candidates[0]


def create_instance(
    consumer: VerifiedConsumer, headers: ApsHeaders, app: AppInput, partner_id: str
) -> tuple[ApsContext, Outcome]:
    """Instance creation (POST /app): pins the controller URI and binds the key; idempotent.

    :raise AuthenticationFailed: the key is bound to another live instance, or the instance to another key.
    :raise PayloadError: a repeat with another controller URI. :raise Conflict: aps.id taken.
    """
    with db.atomic():
        existing = ApsInstance.get_or_none(ApsInstance.instance_id == headers.instance_id)
        if existing is not None and existing.status == ACTIVE:
            if existing.consumer_key != consumer.key:
                raise AuthenticationFailed(reason="APS-Instance-ID is bound to another consumer key")
            if existing.controller_uri != headers.controller_uri:
                raise PayloadError(URI_MISMATCH, reason="repeated creation from another controller URI")
            if app.aps_id and app.aps_id != existing.aps_id:
                raise Conflict("The instance already exists with another aps.id.")
            return context_for(consumer, headers, existing), Outcome(200, instance_body(existing))
        bound = ApsInstance.get_or_none(ApsInstance.consumer_key == consumer.key)
        if bound is not None and bound.status == ACTIVE:
            raise AuthenticationFailed(reason=f"consumer key already bound to instance {bound.instance_id}")
        aps_id = app.aps_id or headers.instance_id
        if aps_id != headers.instance_id:
            log.warning("instance %s: aps.id %s differs from APS-Instance-ID", headers.instance_id, aps_id)
        # Tombstones of removed instances give way to the new instance (same key or same ids).
        ApsInstance.delete().where(
            (ApsInstance.status == REMOVED)
            & (
                (ApsInstance.consumer_key == consumer.key)
                | (ApsInstance.instance_id == headers.instance_id)
                | (ApsInstance.aps_id == aps_id)
            )
        ).execute()
        partner = resolve_partner(partner_id)
        try:
            with db.atomic():
                row = ApsInstance.create(
                    instance_id=headers.instance_id,
                    aps_id=aps_id,
                    aps_type=app.aps_type or "",
                    controller_uri=headers.controller_uri,
                    consumer_key=consumer.key,
                    secret_id=consumer.secret_id,
                    organization=partner,
                    settings=dumps(app.settings),
                )
        except pw.IntegrityError as e:
            raise Conflict("The application resource id is already in use.", reason=str(e)[:200]) from e
    context = context_for(consumer, headers, row)
    log.info(
        "instance created for partner %s, controller %s",
        partner.id,
        row.controller_uri,
        extra=context.log_extra,
    )
    return context, Outcome(201, instance_body(row))


def _own(ctx: ApsContext, app_id: str) -> ApsInstance:
    row = ApsInstance.get_or_none(ApsInstance.instance_id == ctx.instance_id)
    if row is None or row.aps_id != app_id.lower():
        raise NotFound(INSTANCE_NOT_FOUND, reason="app id is not the instance of APS-Instance-ID")
    return row


def get_instance(ctx: ApsContext, app_id: str) -> Outcome:
    """:raise NotFound:"""
    return Outcome(200, instance_body(_own(ctx, app_id)))


def configure_instance(ctx: ApsContext, app_id: str, app: AppInput) -> Outcome:
    """Merge the changed global settings (PUT carries only what changed). :raise NotFound:"""
    with db.atomic():
        row = _own(ctx, app_id)
        settings = {**loads_object(row.settings), **app.settings}
        row.settings = dumps(settings)
        row.updated_at = utcnow()
        row.save()
    log.info("instance configured (%d settings)", len(app.settings), extra=ctx.log_extra)
    return Outcome(200, instance_body(row))


def upgrade_instance(ctx: ApsContext, app_id: str, from_version: str) -> Outcome:
    """POST /app/{id}/upgrade?version=<old>: the controller moved the instance to the package now deployed.

    The call names the version it upgraded *from* (the new one is the package serving it); we record that
    version and the time, so operators can see which instances went through which upgrade. Nothing else
    changes. A repeat with the same version is a no-op (the time of the first call is kept): 204 either way.
    :raise NotFound: another instance's id (a removed instance never gets here: ``authorize`` refuses it).
    """
    with db.atomic():
        row = _own(ctx, app_id)
        if row.upgraded_from != from_version:
            row.upgraded_from = from_version
            row.upgraded_at = row.updated_at = utcnow()
            row.save()
            log.info("instance upgraded from version %s", from_version, extra=ctx.log_extra)
    return Outcome(204)


def remove_instance(ctx: ApsContext, app_id: str) -> Outcome:
    """Removal leaves a tombstone (a repeated DELETE is 204); refused while tenants remain.

    :raise NotFound: another instance's id. :raise Conflict: tenants are still provisioned.
    """
    with db.atomic():
        row = _own(ctx, app_id)
        if row.status == REMOVED:
            return Outcome(204)
        tenants = (
            ApsResource.select()
            .where((ApsResource.instance == row.instance_id) & (ApsResource.kind == TENANT))
            .count()
        )
        if tenants:
            raise Conflict(
                f"Unprovision the {tenants} tenant(s) of this instance first.", reason="instance has tenants"
            )
        row.status = REMOVED
        row.updated_at = utcnow()
        row.save()
    log.info("instance removed", extra=ctx.log_extra)
    return Outcome(204)


def instance_body(row: ApsInstance) -> dict[str, object]:
    """The app resource as the controller sees it: aps, the global settings, and our partner id."""
    return {
        **loads_object(row.settings),
        "aps": {"type": row.aps_type, "id": row.aps_id},
        "partnerId": row.organization_id,
    }
