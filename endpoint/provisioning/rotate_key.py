"""``bootstrap.py rotate-key``: a new consumer secret, the old one valid until the end of the overlap."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Mapping
from pathlib import Path

from endpoint.config.settings import Settings
from endpoint.provisioning.instance import read_instance_document, write_instance_document
from endpoint.provisioning.keys import rotate
from models import init_database, migrate
from models.db import utcnow

DEFAULT_OVERLAP_HOURS = 24.0


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", help="consumer key (default: the primary consumer bootstrap created)")
    parser.add_argument(
        "--overlap-hours",
        type=float,
        default=DEFAULT_OVERLAP_HOURS,
        help="how long the current secret(s) keep working (default 24)",
    )
    parser.add_argument(
        "--instance-json",
        default="var/app_instance.json",
        help="instance document to rewrite with the new secret",
    )


def run(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    path = Path(args.instance_json)
    document = read_instance_document(path)
    if document is None:
        # Before the database: a new secret that no document carries is a secret nobody holds, while the
        # one the controller does hold runs out at the end of the overlap.
        raise ValueError(
            f"--instance-json {path}: no instance document there; rotate-key writes the new secret into it "
            "for the controller: pass the document bootstrap wrote"
        )
    oauth = document.get("aps", {}).get("auth", {}).get("oauth", {})
    database = init_database(settings.database, create=False)
    migrate(database)
    now = utcnow()
    with database.connection_context():
        if args.key is None and oauth.get("key") is None:
            raise ValueError(f"{path}: no aps.auth.oauth.key to rotate")
        key = args.key or oauth.get("key")
        if oauth.get("key") not in (None, key):
            raise ValueError(
                f"{path} holds key {oauth.get('key')!r}, not {key!r}; pass the matching --instance-json"
            )
        rotation = rotate(key, dt.timedelta(hours=args.overlap_hours), now)
    print(f"consumer {rotation.key}: new secret #{rotation.secret_id}")
    for info in rotation.overlapping:
        until = f"{info.not_after:%Y-%m-%d %H:%M:%S} UTC" if info.not_after else "no end"
        print(f"  secret #{info.id} keeps working until {until}")
    oauth["secret"] = rotation.secret
    write_instance_document(path, document)
    print(f"instance document: {path} rewritten with the new secret (mode 0600)")
    print(
        f"hand it to the controller before the overlap ends: connector hand-over-key --instance-json {path}; "
        "then revoke-key the old one"
    )
    return 0
