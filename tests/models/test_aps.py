"""APS tables: migration 3, the constraints the binding and idempotency rules rest on, lookup indexes."""

from __future__ import annotations

import peewee as pw
import pytest

from models import MIGRATIONS, ApsInstance, ApsJob, ApsResource
from models.aps import TENANT
from tests.support.builders import create_org

INSTANCE = "5d1e4c2a-8f3b-4a6d-9c7e-1b2a3c4d5e6f"
OTHER = "9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f"


def instance(
    instance_id: str = INSTANCE, key: str = "key-00000001", aps_id: str | None = None
) -> ApsInstance:
    return ApsInstance.create(
        instance_id=instance_id,
        aps_id=aps_id or instance_id,
        aps_type="t",
        controller_uri="https://apsc/",
        consumer_key=key,
        organization=create_org(f"P {instance_id[:4]}"),
    )


def test_migration_3_creates_the_aps_tables(database: pw.Database) -> None:
    assert MIGRATIONS[2].version == 3
    for model in (ApsInstance, ApsResource, ApsJob):
        assert database.table_exists(model._meta.table_name)


def test_one_instance_per_key_and_per_app_id(database: pw.Database) -> None:
    instance()
    with pytest.raises(pw.IntegrityError), database.atomic():
        instance(OTHER)  # same consumer key
    with pytest.raises(pw.IntegrityError), database.atomic():
        instance(OTHER, key="key-00000002", aps_id=INSTANCE)


def test_one_job_per_resource_and_operation(database: pw.Database) -> None:
    ApsJob.create(aps_id=OTHER, operation="tenants.provision", instance_id=INSTANCE)
    ApsJob.create(aps_id=OTHER, operation="tenants.disable", instance_id=INSTANCE)
    with pytest.raises(pw.IntegrityError), database.atomic():
        ApsJob.create(aps_id=OTHER, operation="tenants.provision", instance_id=INSTANCE)


def test_states_and_kinds_are_checked(database: pw.Database) -> None:
    row = instance()
    with pytest.raises(pw.IntegrityError), database.atomic():
        ApsJob.create(aps_id=OTHER, operation="x", instance_id=INSTANCE, state="exploded")
    with pytest.raises(pw.IntegrityError), database.atomic():
        ApsResource.create(aps_id=OTHER, kind="printer", aps_type="t", instance=row)
    ApsResource.create(aps_id=OTHER, kind=TENANT, aps_type="t", instance=row)


def test_every_lookup_path_is_indexed(database: pw.Database) -> None:
    def indexed(model: type[pw.Model]) -> set[tuple[str, ...]]:
        return {tuple(index.columns) for index in database.get_indexes(model._meta.table_name)}

    jobs = {("instance_id", "aps_id", "operation"), ("state", "next_attempt_at"), ("state", "lease_until")}
    assert jobs <= indexed(ApsJob)
    assert {("instance_id", "kind"), ("organization_id",), ("user_id",), ("tenant_id",)} <= indexed(
        ApsResource
    )
    assert {("consumer_key",), ("aps_id",), ("organization_id",)} <= indexed(ApsInstance)
