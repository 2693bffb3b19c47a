"""``bootstrap.py list-keys``: consumer keys, their secrets' ids, ages and expiry (never a secret)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from endpoint.config.settings import Settings
from endpoint.provisioning.keys import describe_age, list_keys
from models import init_database, migrate
from models.db import utcnow


def configure_parser(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    database = init_database(settings.database, create=False)
    migrate(database)
    now = utcnow()
    with database.connection_context():
        keys = list_keys()
    if not keys:
        print("no consumer keys: run `connector init` (or bootstrap.py) first")
        return 0
    for info in keys:
        bound = f"instance {info.instance_id}" if info.instance_id else "no instance yet"
        age = describe_age(info.created_at, now)
        print(f"{info.key}  ({info.label or 'no label'}; {bound}; created {age} ago)")
        for secret in info.secrets:
            if secret.not_after is None:
                expiry = "active, no expiry"
            elif secret.not_after > now:
                left = describe_age(now, secret.not_after)
                expiry = f"active, expires in {left} ({secret.not_after:%Y-%m-%d %H:%M} UTC)"
            else:
                expiry = f"ended {describe_age(secret.not_after, now)} ago"
            print(f"  secret #{secret.id}: age {describe_age(secret.created_at, now)}, {expiry}")
    return 0
