"""Instances: one live instance per key (401), the pinned controller URI (400), idempotent creation."""

from __future__ import annotations

import peewee as pw
import pytest

from endpoint.aps import instances
from endpoint.aps.context import Outcome
from endpoint.aps.payloads import AppInput
from endpoint.errors import AuthenticationFailed, Conflict, NotFound, PayloadError, Unavailable
from models import ApsInstance, ApsResource
from models.aps import REMOVED, TENANT
from tests.support.aps_builders import (
    APP_TYPE,
    CONTROLLER_URI,
    INSTANCE_ID,
    bound_instance,
    consumer,
    headers,
)
from tests.support.builders import create_consumer, create_org

OTHER_INSTANCE = "9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f"
OTHER_KEY = "acme-00000000000000000000000000000000"


def app(aps_id: str | None = INSTANCE_ID, **settings: object) -> AppInput:
    return AppInput(aps_id, APP_TYPE, dict(settings))


def test_creation_pins_the_uri_binds_the_key_and_is_idempotent(database: pw.Database) -> None:
    create_consumer()
    partner = create_org("Root")
    ctx, outcome = instances.create_instance(consumer(), headers(), app(hubID="h1"), "")
    assert outcome.status == 201
    assert outcome.body == {
        "hubID": "h1",
        "aps": {"type": APP_TYPE, "id": INSTANCE_ID},
        "partnerId": partner.id,
    }
    row = ApsInstance.get_by_id(INSTANCE_ID)
    assert (row.controller_uri, row.consumer_key, row.organization_id) == (
        CONTROLLER_URI,
        ctx.consumer_key,
        partner.id,
    )
    _, again = instances.create_instance(consumer(), headers(), app(hubID="h1"), "")
    assert again.status == 200 and again.body == outcome.body
    assert ApsInstance.select().count() == 1


def test_a_key_serves_one_live_instance(database: pw.Database) -> None:
    bound_instance()
    with pytest.raises(AuthenticationFailed):
        instances.create_instance(consumer(), headers(instance_id=OTHER_INSTANCE), app(OTHER_INSTANCE), "")
    create_consumer(key=OTHER_KEY)
    with pytest.raises(AuthenticationFailed):  # someone else's key naming our instance
        instances.create_instance(consumer(OTHER_KEY), headers(), app(), "")


def test_a_repeat_from_another_controller_is_400(database: pw.Database) -> None:
    bound_instance()
    with pytest.raises(PayloadError):
        instances.create_instance(consumer(), headers(controller_uri="https://evil.example/"), app(), "")


@pytest.mark.parametrize("partners", [0, 2])
def test_without_exactly_one_partner_creation_is_unavailable(database: pw.Database, partners: int) -> None:
    create_consumer()
    for index in range(partners):
        create_org(f"Partner {index}")
    with pytest.raises(Unavailable):
        instances.create_instance(consumer(), headers(), app(), "")
    assert ApsInstance.select().count() == 0


def test_a_configured_partner_wins(database: pw.Database) -> None:
    create_consumer()
    create_org("First")
    chosen = create_org("Second")
    _, outcome = instances.create_instance(consumer(), headers(), app(), chosen.id)
    assert outcome.body is not None and outcome.body["partnerId"] == chosen.id


def test_authorize_checks_binding_then_pin(database: pw.Database) -> None:
    bound_instance()
    ctx = instances.authorize(consumer(secret_id=7), headers())
    assert ctx.app_id == INSTANCE_ID and ctx.transaction_id == "tx-0001"
    assert ApsInstance.get_by_id(INSTANCE_ID).secret_id == 7  # callbacks follow the controller's secret
    create_consumer(key=OTHER_KEY)
    with pytest.raises(AuthenticationFailed):
        instances.authorize(consumer(OTHER_KEY), headers())
    with pytest.raises(AuthenticationFailed):
        instances.authorize(consumer(), headers(instance_id=OTHER_INSTANCE))
    with pytest.raises(PayloadError) as caught:
        instances.authorize(consumer(), headers(controller_uri="https://apsc.example.net:6309/"))
    assert caught.value.message == instances.URI_MISMATCH


def test_configure_merges_settings(database: pw.Database) -> None:
    bound = bound_instance()
    ctx = bound.ctx()
    instances.configure_instance(ctx, INSTANCE_ID, app(None, a=1, b=2))
    outcome = instances.configure_instance(ctx, INSTANCE_ID.upper(), app(None, b=3))
    assert outcome.body is not None and (outcome.body["a"], outcome.body["b"]) == (1, 3)
    with pytest.raises(NotFound):
        instances.get_instance(ctx, OTHER_INSTANCE)


def test_removal_waits_for_the_tenants_and_leaves_a_tombstone(database: pw.Database) -> None:
    bound = bound_instance()
    ctx = bound.ctx()
    tenant = ApsResource.create(aps_id=OTHER_INSTANCE, kind=TENANT, aps_type="t", instance=bound.instance)
    with pytest.raises(Conflict):
        instances.remove_instance(ctx, INSTANCE_ID)
    tenant.delete_instance()
    assert instances.remove_instance(ctx, INSTANCE_ID).status == 204
    assert ApsInstance.get_by_id(INSTANCE_ID).status == REMOVED
    assert instances.remove_instance(ctx, INSTANCE_ID).status == 204  # a retried DELETE
    with pytest.raises(NotFound):
        instances.authorize(consumer(), headers())
    assert instances.authorize(consumer(), headers(), allow_removed=True).instance_id == INSTANCE_ID
    # The key is free again: a new instance replaces the tombstone.
    _, outcome = instances.create_instance(
        consumer(), headers(instance_id=OTHER_INSTANCE), app(OTHER_INSTANCE), ""
    )
    assert outcome.status == 201
    assert [row.instance_id for row in ApsInstance.select()] == [OTHER_INSTANCE]


def test_an_upgrade_records_the_version_it_came_from_once(database: pw.Database) -> None:
    bound = bound_instance()
    ctx = bound.ctx()
    assert instances.upgrade_instance(ctx, INSTANCE_ID.upper(), "1.0-1") == Outcome(204)
    first = ApsInstance.get_by_id(INSTANCE_ID)
    assert first.upgraded_from == "1.0-1" and first.upgraded_at is not None
    assert instances.upgrade_instance(ctx, INSTANCE_ID, "1.0-1") == Outcome(204)  # a repeat: no change
    again = ApsInstance.get_by_id(INSTANCE_ID)
    assert (again.upgraded_at, again.updated_at) == (first.upgraded_at, first.updated_at)
    assert (again.settings, again.status, again.consumer_key) == (
        first.settings,
        first.status,
        first.consumer_key,
    )
    with pytest.raises(NotFound):  # another instance's app id, under this instance's key
        instances.upgrade_instance(ctx, OTHER_INSTANCE, "1.1")
    assert ApsInstance.get_by_id(INSTANCE_ID).upgraded_from == "1.0-1"
