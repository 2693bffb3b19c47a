"""ConsumerSecrets: the in-process snapshot of verification secrets, its expiry and its refresh."""

from __future__ import annotations

import datetime as dt

import peewee as pw

from endpoint.auth.consumers import ConsumerSecrets
from models import ConsumerSecret
from models.db import utcnow
from tests.support.builders import CONSUMER_KEY, CONSUMER_SECRET, create_consumer


def test_secrets_come_from_the_last_load_only(database: pw.Database) -> None:
    secrets = ConsumerSecrets(refresh_interval=2)
    assert secrets.active(CONSUMER_KEY) == [] and secrets.age is None
    consumer = create_consumer()
    assert secrets.active(CONSUMER_KEY) == []  # not loaded yet: no database read per request
    assert secrets.load() == 1
    [(secret_id, secret)] = secrets.active(CONSUMER_KEY)
    assert secret == CONSUMER_SECRET
    ConsumerSecret.create(consumer=consumer, secret="newer-" + "b" * 40)
    secrets.load()
    assert [s for _, s in secrets.active(CONSUMER_KEY)] == ["newer-" + "b" * 40, CONSUMER_SECRET]
    assert secrets.age is not None and secrets.age < 5


def test_expiry_is_evaluated_per_request_not_per_load(database: pw.Database) -> None:
    create_consumer(not_after=utcnow() + dt.timedelta(seconds=30))
    secrets = ConsumerSecrets(refresh_interval=2)
    secrets.load()
    assert secrets.active(CONSUMER_KEY) != []
    assert secrets.active(CONSUMER_KEY, now=utcnow() + dt.timedelta(seconds=31)) == []


def test_a_revoked_secret_disappears_at_the_next_load(database: pw.Database) -> None:
    create_consumer()
    secrets = ConsumerSecrets(refresh_interval=2)
    secrets.load()
    ConsumerSecret.update(not_after=utcnow() - dt.timedelta(seconds=1)).execute()
    assert secrets.active(CONSUMER_KEY) != []  # until the refresh (bounded by refresh_interval)
    secrets.load()
    assert secrets.active(CONSUMER_KEY) == []


def test_unknown_keys_have_no_secrets(database: pw.Database) -> None:
    create_consumer()
    secrets = ConsumerSecrets(refresh_interval=2)
    secrets.load()
    assert secrets.active("someone-else-0000") == []
