"""OAuth consumer secrets over time: rotation with an overlap, immediate revocation, and a listing.

A rotation adds a secret and gives every secret still open-ended a ``not_after`` at the end of the
overlap, so the controller keeps working with the old secret until it has learnt the new one (how a
secret reaches an existing instance is not documented: aps.md §9). Secrets are never returned by the
listing; only ids, ages and expiry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from endpoint.provisioning.instance import PRIMARY_LABEL, generate_secret
from models import ApsInstance, Consumer, ConsumerSecret, db
from models.aps import ACTIVE


@dataclass(frozen=True, slots=True)
class SecretInfo:
    id: int
    created_at: dt.datetime
    not_after: dt.datetime | None

    def active(self, now: dt.datetime) -> bool:
        return self.not_after is None or self.not_after > now


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key: str
    label: str
    created_at: dt.datetime
    instance_id: str | None  # the live APS instance the key is bound to
    secrets: list[SecretInfo] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Rotation:
    key: str
    secret_id: int
    secret: str = field(repr=False)
    overlapping: list[SecretInfo] = field(default_factory=list)  # older secrets and their new end


def find_consumer(key: str | None) -> Consumer:
    """The consumer with ``key``, or bootstrap's primary one. :raise ValueError: none."""
    query = Consumer.key == key if key else Consumer.label == PRIMARY_LABEL
    consumer = Consumer.get_or_none(query)
    if consumer is None:
        raise ValueError(
            f"no consumer {key!r}" if key else "no primary consumer: run bootstrap.py init first"
        )
    return consumer


def _infos(consumer: Consumer) -> list[SecretInfo]:
    rows = ConsumerSecret.select().where(ConsumerSecret.consumer == consumer).order_by(ConsumerSecret.id)
    return [SecretInfo(row.id, row.created_at, row.not_after) for row in rows]


def rotate(key: str | None, overlap: dt.timedelta, now: dt.datetime) -> Rotation:
    """Add a new secret; every active secret stays valid until ``now + overlap`` at the latest.

    :raise ValueError: unknown consumer, or a negative overlap.
    """
    if overlap < dt.timedelta(0):
        raise ValueError("the overlap must not be negative")
    end = now + overlap
    with db.atomic():
        consumer = find_consumer(key)
        open_ended = (ConsumerSecret.consumer == consumer) & (
            ConsumerSecret.not_after.is_null() | (ConsumerSecret.not_after > end)
        )
        ConsumerSecret.update(not_after=end).where(open_ended).execute()
        secret = generate_secret()
        row = ConsumerSecret.create(consumer=consumer, secret=secret, created_at=now)
        overlapping = [info for info in _infos(consumer) if info.id != row.id and info.active(now)]
    return Rotation(consumer.key, row.id, secret, overlapping)


def revoke(key: str | None, secret_id: int, now: dt.datetime, *, force: bool = False) -> SecretInfo:
    """End one secret at once.

    :raise ValueError: not a secret of that consumer, already ended, or the last active one (unless
        ``force``: revoking it stops every signed request until a new secret is added).
    """
    with db.atomic():
        consumer = find_consumer(key)
        row = ConsumerSecret.get_or_none(
            (ConsumerSecret.id == secret_id) & (ConsumerSecret.consumer == consumer)
        )
        if row is None:
            raise ValueError(f"secret #{secret_id} does not belong to consumer {consumer.key}")
        if row.not_after is not None and row.not_after <= now:
            raise ValueError(f"secret #{secret_id} already ended at {row.not_after:%Y-%m-%d %H:%M:%S} UTC")
        others = [info for info in _infos(consumer) if info.id != row.id and info.active(now)]
        if not others and not force:
            raise ValueError(
                f"secret #{secret_id} is the last active secret of {consumer.key}; "
                "rotate first or use --force"
            )
        row.not_after = now
        row.save()
    return SecretInfo(row.id, row.created_at, row.not_after)


def list_keys() -> list[KeyInfo]:
    """Every consumer with its secrets' ids, creation and expiry (never the secrets)."""
    bound = {
        row.consumer_key: row.instance_id for row in ApsInstance.select().where(ApsInstance.status == ACTIVE)
    }
    return [
        KeyInfo(consumer.key, consumer.label, consumer.created_at, bound.get(consumer.key), _infos(consumer))
        for consumer in Consumer.select().order_by(Consumer.id)
    ]


def describe_age(then: dt.datetime, now: dt.datetime) -> str:
    """ "3d 4h", "5h 12m", "42s": short and sortable by eye."""
    seconds = int(abs((now - then).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {seconds}s" if minutes else f"{seconds}s"
