"""``connector repin-controller``: move an APS instance to a new controller URI, deliberately.

The endpoint pins the APS-Controller-URI an instance was created from and refuses calls that name
another one (the header is not covered by the signature). After a real controller move, an operator
re-pins here: the new URI is normalized exactly as the header is, must pass ``aps.controller_allowlist``,
and takes effect for the next call (the endpoint reads the pin per request).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from endpoint.aps.headers import allowed, controller_base, is_uuid
from endpoint.config.settings import Settings
from models import ApsInstance, init_database
from models.aps import ACTIVE
from models.db import utcnow


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--instance-id", required=True, help="the APS-Instance-ID (see the endpoint's log)")
    parser.add_argument("--controller-uri", required=True, help="the controller's new APS-Controller-URI")


def run(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    """:raise ValueError: a malformed or not allowlisted URI, an unknown or removed instance."""
    instance_id = args.instance_id.strip().lower()
    if not is_uuid(instance_id):
        raise ValueError(f"--instance-id {args.instance_id!r}: must be a UUID")
    try:
        uri = controller_base(args.controller_uri, development_mode=settings.aps.development_mode)
    except ValueError as e:
        raise ValueError(f"--controller-uri {e}") from None
    if not allowed(uri, settings.aps.controller_allowlist):
        raise ValueError(f"--controller-uri {uri}: not in aps.controller_allowlist; add it there first")
    database = init_database(settings.database, create=False)
    with database.connection_context(), database.atomic():
        instance = ApsInstance.get_or_none(ApsInstance.instance_id == instance_id)
        if instance is None or instance.status != ACTIVE:
            raise ValueError(f"--instance-id {instance_id}: no active APS instance with this id")
        previous = instance.controller_uri
        if previous != uri:
            instance.controller_uri = uri
            instance.updated_at = utcnow()
            instance.save()
    if previous == uri:
        print(f"instance {instance_id}: already pinned to {uri}")
    else:
        print(f"instance {instance_id}: controller {previous} -> {uri}")
    return 0
