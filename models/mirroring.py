"""Mirrored enablement (CyberApp v2): the Acronis tenants we created a vendor organization for."""

from __future__ import annotations

import peewee as pw

from models.db import BaseModel, utcnow
from models.tables import CUSTOMER, PARTNER, Organization


class MirroredTenant(BaseModel):
    """An Acronis partner (P) or one of its customers, mirrored as a vendor organization.

    Both unique indexes back the contract's 409s: one record per Acronis tenant and per vendor org, so two
    concurrent enables of the same tenant cannot both create one. Disabling keeps the row and the org.
    """

    acronis_tenant_id = pw.CharField(max_length=36, unique=True)
    organization = pw.ForeignKeyField(Organization, unique=True, on_delete="CASCADE", backref="mirror")
    kind = pw.CharField(max_length=16, constraints=[pw.Check(f"kind in ('{PARTNER}', '{CUSTOMER}')")])
    partner_tenant_id = pw.CharField(max_length=36, null=True, index=True)  # a customer's P
    name = pw.CharField(max_length=255)  # display data, never a lookup key
    enabled = pw.BooleanField(default=True)
    settings = pw.TextField(default="{}")  # the CyberApp's "Additional settings" (JSON object)
    datacenter_url = pw.CharField(max_length=255, null=True)
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "mirrored_tenant"


MIRRORING_MODELS: list[type[BaseModel]] = [MirroredTenant]
