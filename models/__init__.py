"""Persistence: the shared database proxy, every table, and the code-owned schema migrations."""

from models.aps import APS_MODELS, ApsInstance, ApsJob, ApsResource
from models.db import BaseModel, DatabaseSettings, db, init_database, open_database, unit_of_work
from models.migrations import MIGRATIONS, SchemaVersion, migrate
from models.mirroring import MIRRORING_MODELS, MirroredTenant
from models.outbox import OutboxItem
from models.tables import (
    CORE_MODELS,
    CUSTOMER,
    PARTNER,
    Consumer,
    ConsumerSecret,
    Nonce,
    Organization,
    OrganizationMapping,
    RequestLedger,
    User,
)

ALL_MODELS: list[type[BaseModel]] = [*CORE_MODELS, OutboxItem, *APS_MODELS, *MIRRORING_MODELS, SchemaVersion]

__all__ = [
    "ALL_MODELS",
    "APS_MODELS",
    "ApsInstance",
    "ApsJob",
    "ApsResource",
    "CUSTOMER",
    "MIGRATIONS",
    "MirroredTenant",
    "PARTNER",
    "BaseModel",
    "Consumer",
    "ConsumerSecret",
    "DatabaseSettings",
    "Nonce",
    "Organization",
    "OrganizationMapping",
    "OutboxItem",
    "RequestLedger",
    "SchemaVersion",
    "User",
    "db",
    "init_database",
    "migrate",
    "open_database",
    "unit_of_work",
]
