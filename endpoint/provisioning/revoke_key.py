"""``bootstrap.py revoke-key``: end one consumer secret at once (a leaked or retired secret)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from endpoint.config.settings import Settings
from endpoint.provisioning.keys import revoke
from models import init_database, migrate
from models.db import utcnow


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--secret-id", type=int, required=True, help="the secret's id (see list-keys)")
    parser.add_argument("--key", help="consumer key (default: the primary consumer)")
    parser.add_argument("--force", action="store_true", help="allow revoking the last active secret")


def run(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    database = init_database(settings.database, create=False)
    migrate(database)
    with database.connection_context():
        info = revoke(args.key, args.secret_id, utcnow(), force=args.force)
    print(f"secret #{info.id} revoked: requests signed with it now fail with 401")
    return 0
