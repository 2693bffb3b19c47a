"""Core tables: organizations, users, tenant mappings, OAuth consumers, nonces and the request ledger."""

from __future__ import annotations

import datetime as dt
from typing import Any

import peewee as pw

from models.db import BaseModel, new_id, serialized_write, utcnow
from models.prepared import PreparedQuery

PARTNER = "partner"
CUSTOMER = "customer"


class Organization(BaseModel):
    """A node of the vendor's tenant tree: partners nest to any depth; customers are leaves."""

    id = pw.CharField(primary_key=True, max_length=36, default=new_id)
    name = pw.CharField(max_length=255)
    kind = pw.CharField(max_length=16, constraints=[pw.Check(f"kind in ('{PARTNER}', '{CUSTOMER}')")])
    parent = pw.ForeignKeyField("self", null=True, backref="children", on_delete="RESTRICT", index=True)
    # False while the tenant is disabled (APS disable): its users cannot authenticate.
    active = pw.BooleanField(default=True)
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("parent", "kind", "name"), False),)

    @classmethod
    def subtree(cls, root_id: str) -> pw.ModelSelect:
        """Every organization strictly below ``root_id``, at any depth.

        A recursive CTE anchored at the root: the cost follows the subtree, not the table.
        """
        base = cls.select(cls.id).where(cls.parent == root_id).cte("subtree", recursive=True, columns=("id",))
        child = cls.alias()
        step = child.select(child.id).join(base, on=(child.parent == base.c.id))
        tree = base.union_all(step)
        return cls.select().join(tree, on=(cls.id == tree.c.id)).with_cte(tree)

    @classmethod
    def customers_of(cls, root_id: str) -> pw.ModelSelect:
        """Customers anywhere below ``root_id``, in a deterministic order (name, then id)."""
        return cls.subtree(root_id).where(cls.kind == CUSTOMER).order_by(cls.name, cls.id)


class User(BaseModel):
    """An end user of the vendor's product; logins are stored normalized (lower-case)."""

    id = pw.CharField(primary_key=True, max_length=36, default=new_id)
    login = pw.CharField(max_length=255, unique=True)
    name = pw.CharField(max_length=255)
    email = pw.CharField(max_length=255)
    # None until a password is set (user_write creates users without one).
    password_hash = pw.CharField(max_length=255, null=True)
    organization = pw.ForeignKeyField(Organization, backref="users", on_delete="CASCADE")
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        # users_read lists one organization's users ordered by name: served by this index alone.
        indexes = ((("organization", "name", "id"), False),)

    @staticmethod
    def normalize_login(login: str) -> str:
        return login.strip().lower()


class OrganizationMapping(BaseModel):
    """Vendor organization <-> Acronis tenant, with the data center the mapping was made on."""

    organization = pw.ForeignKeyField(Organization, unique=True, on_delete="CASCADE", backref="mapping")
    acronis_tenant_id = pw.CharField(max_length=36, unique=True)
    datacenter_url = pw.CharField(max_length=255)
    created_at = pw.DateTimeField(default=utcnow)


class Consumer(BaseModel):
    """An OAuth 1.0 consumer (the APS application instance key)."""

    key = pw.CharField(max_length=128, unique=True)
    label = pw.CharField(max_length=255, default="")
    created_at = pw.DateTimeField(default=utcnow)

    @classmethod
    def active_secrets(cls, key: str, now: dt.datetime) -> list[tuple[int, str]]:
        """(secret id, secret) pairs that may verify a signature for ``key`` right now, newest first."""
        return [(int(sid), secret) for sid, secret in _ACTIVE_SECRETS.all(key=key, now=now)]

    @classmethod
    def unexpired_secrets(cls, now: dt.datetime) -> list[tuple[str, int, str, dt.datetime | None]]:
        """(key, secret id, secret, not_after) of every secret not expired at ``now``, newest first per key.

        The whole verification table in one read, for the in-process snapshot (endpoint/auth/consumers.py).
        """
        query = (
            ConsumerSecret.select(
                Consumer.key, ConsumerSecret.id, ConsumerSecret.secret, ConsumerSecret.not_after
            )
            .join(Consumer)
            .where(ConsumerSecret.not_after.is_null() | (ConsumerSecret.not_after > now))
            .order_by(Consumer.key, ConsumerSecret.created_at.desc(), ConsumerSecret.id.desc())
            .tuples()
        )
        return [(key, int(sid), secret, not_after) for key, sid, secret, not_after in query]


class ConsumerSecret(BaseModel):
    """One shared secret of a consumer; several overlap during a rotation until ``not_after``."""

    consumer = pw.ForeignKeyField(Consumer, backref="secrets", on_delete="CASCADE")
    # HMAC secrets are plaintext-equivalent by nature (RFC 5849 §4.5): protect the database.
    secret = pw.CharField(max_length=255)
    created_at = pw.DateTimeField(default=utcnow)
    not_after = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("consumer", "not_after"), False),)


class _WithoutRowidOnSqlite(pw.SchemaManager):
    """SQLite stores the table as its primary-key b-tree (WITHOUT ROWID); the other backends have no such
    clause (InnoDB clusters on its primary key anyway; PostgreSQL keeps a heap and the key's index)."""

    def _create_table(self, safe: bool = True, **options: Any) -> Any:
        ctx = super()._create_table(safe, **options)
        database = getattr(self.database, "obj", self.database)  # the models' Proxy, or a real database
        if isinstance(database, pw.SqliteDatabase):
            ctx.literal(" WITHOUT ROWID")
        return ctx


class Nonce(BaseModel):
    """Nonces seen within the timestamp window; the primary key (consumer, nonce) is what makes replays
    fail (one nonce per consumer in the window: stricter than RFC 5849's per timestamp).

    The key is the only b-tree: recording a nonce is the one write of every signed request, and each
    commit writes every page it dirtied, so a row id table plus a unique index plus a timestamp index
    cost three pages where this costs one (SQLite, measured: 22 us an insert instead of 38 us). The
    minutely purge by age scans the table instead of an index (~0.2 s for a full window at 2,000 req/s).
    """

    consumer_key = pw.CharField(max_length=128)
    nonce = pw.CharField(max_length=128)  # RFC 5849 sets no length; we accept 1-128 printable ASCII
    timestamp = pw.BigIntegerField()

    class Meta:
        primary_key = pw.CompositeKey("consumer_key", "nonce")
        schema_manager_class = _WithoutRowidOnSqlite

    @classmethod
    def record(cls, consumer_key: str, nonce: str, timestamp: int) -> bool:
        """Atomically record a nonce; False when it was already there (a replay).

        SQLite: INSERT OR IGNORE; PostgreSQL: ON CONFLICT DO NOTHING; MySQL: INSERT IGNORE. The primary
        key makes this race-free across threads, processes and hosts (no select-then-insert).
        """
        with serialized_write():
            return _RECORD_NONCE.rowcount(key=consumer_key, nonce=nonce, ts=timestamp) > 0

    @classmethod
    def purge(cls, older_than: int) -> int:
        return cls.delete().where(cls.timestamp < older_than).execute()


class RequestLedger(BaseModel):
    """Stored answers to state-changing callbacks, so a gateway retry never re-runs an effect."""

    principal = pw.CharField(max_length=255)
    organization_id = pw.CharField(max_length=36)
    request_id = pw.CharField(max_length=36)
    callback_id = pw.CharField(max_length=255)
    payload_hash = pw.CharField(max_length=64)
    status = pw.IntegerField()
    response_body = pw.TextField()
    created_at = pw.DateTimeField(default=utcnow, index=True)

    class Meta:
        indexes = ((("principal", "organization_id", "request_id"), True),)


# The two statements every signed request runs, rendered once (models/prepared.py).
_ACTIVE_SECRETS = PreparedQuery(
    lambda key, now: (
        ConsumerSecret.select(ConsumerSecret.id, ConsumerSecret.secret)
        .join(Consumer)
        .where(
            (Consumer.key == key) & (ConsumerSecret.not_after.is_null() | (ConsumerSecret.not_after > now))
        )
        .order_by(ConsumerSecret.created_at.desc(), ConsumerSecret.id.desc())
    ),
    key=str,
    now=dt.datetime,
)
_RECORD_NONCE = PreparedQuery(
    lambda key, nonce, ts: Nonce.insert(consumer_key=key, nonce=nonce, timestamp=ts).on_conflict_ignore(),
    key=str,
    nonce=str,
    ts=int,
)


CORE_MODELS: list[type[BaseModel]] = [
    Organization,
    User,
    OrganizationMapping,
    Consumer,
    ConsumerSecret,
    Nonce,
    RequestLedger,
]
