"""MirroredTenant: the unique indexes behind the mirroring 409s, and the kind check."""

from __future__ import annotations

import peewee as pw
import pytest

from models import CUSTOMER, PARTNER
from models.mirroring import MirroredTenant
from tests.support.builders import create_org

TENANT = "aaaaaaaa-0000-4000-8000-000000000001"


def test_one_record_per_acronis_tenant_and_per_organization(database: pw.Database) -> None:
    first, second = create_org("MP"), create_org("Other")
    MirroredTenant.create(acronis_tenant_id=TENANT, organization=first, kind=PARTNER, name="MP")
    with pytest.raises(pw.IntegrityError), database.atomic():
        MirroredTenant.create(acronis_tenant_id=TENANT, organization=second, kind=PARTNER, name="again")
    with pytest.raises(pw.IntegrityError), database.atomic():
        other = "bbbbbbbb-0000-4000-8000-000000000002"
        MirroredTenant.create(acronis_tenant_id=other, organization=first, kind=CUSTOMER, name="same org")
    row = MirroredTenant.get()
    assert (row.enabled, row.settings, row.partner_tenant_id) == (True, "{}", None)


def test_kind_is_checked(database: pw.Database) -> None:
    with pytest.raises(pw.IntegrityError), database.atomic():
        MirroredTenant.create(
            acronis_tenant_id=TENANT, organization=create_org("X"), kind="reseller", name="X"
        )
