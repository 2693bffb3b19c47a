"""Secret rotation, revocation and listing in the database (the actions' shared logic)."""

from __future__ import annotations

import datetime as dt

import peewee as pw
import pytest

from endpoint.provisioning.keys import describe_age, list_keys, revoke, rotate
from models import Consumer
from models.db import utcnow
from tests.support.aps_builders import bound_instance
from tests.support.builders import CONSUMER_KEY, CONSUMER_SECRET, create_consumer

DAY = dt.timedelta(hours=24)


def active(now: dt.datetime) -> list[str]:
    return [secret for _, secret in Consumer.active_secrets(CONSUMER_KEY, now)]


def test_rotation_overlaps_then_only_the_new_secret_remains(database: pw.Database) -> None:
    create_consumer()
    now = utcnow()
    rotation = rotate(CONSUMER_KEY, DAY, now)
    assert rotation.secret not in repr(rotation)
    assert set(active(now + dt.timedelta(hours=23))) == {CONSUMER_SECRET, rotation.secret}
    assert active(now + DAY + dt.timedelta(seconds=1)) == [rotation.secret]
    [old] = rotation.overlapping
    assert old.not_after == now + DAY


def test_a_second_rotation_never_extends_an_older_secret(database: pw.Database) -> None:
    create_consumer()
    now = utcnow()
    rotate(CONSUMER_KEY, dt.timedelta(hours=1), now)
    second = rotate(CONSUMER_KEY, DAY, now)
    ends = sorted(info.not_after for info in second.overlapping)  # type: ignore[type-var]
    assert ends == [now + dt.timedelta(hours=1), now + DAY]
    with pytest.raises(ValueError):
        rotate(CONSUMER_KEY, -DAY, now)


def test_revocation_is_immediate_but_never_of_the_last_secret_by_accident(database: pw.Database) -> None:
    consumer = create_consumer()
    now = utcnow()
    first = consumer.secrets[0].id
    with pytest.raises(ValueError, match="last active secret"):
        revoke(CONSUMER_KEY, first, now)
    rotation = rotate(CONSUMER_KEY, DAY, now)
    assert revoke(CONSUMER_KEY, first, now).not_after == now
    assert active(now) == [rotation.secret]
    with pytest.raises(ValueError, match="already ended"):
        revoke(CONSUMER_KEY, first, now)
    other = create_consumer(key="acme-00000000000000000000000000000000")
    with pytest.raises(ValueError, match="does not belong"):
        revoke(CONSUMER_KEY, other.secrets[0].id, now)
    assert revoke(CONSUMER_KEY, rotation.secret_id, now, force=True).id == rotation.secret_id
    assert active(now) == []


def test_listing_shows_ids_and_the_bound_instance_never_secrets(database: pw.Database) -> None:
    bound_instance()
    [info] = list_keys()
    assert info.key == CONSUMER_KEY and info.instance_id == bound_instance.__defaults__[0]  # type: ignore[index]
    assert [s.id for s in info.secrets] == [1] and CONSUMER_SECRET not in repr(info)


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "5s"), (65, "1m 5s"), (3 * 3600 + 120, "3h 2m"), (2 * 86400 + 3600, "2d 1h")]
)
def test_ages_read_at_a_glance(seconds: int, text: str) -> None:
    now = utcnow()
    assert describe_age(now - dt.timedelta(seconds=seconds), now) == text
