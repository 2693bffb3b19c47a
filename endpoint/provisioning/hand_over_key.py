"""``connector hand-over-key``: give the controller the secret ``rotate-key`` wrote into the document.

After a rotation the new secret exists twice: in our database and in the instance document. The controller
still signs with the old one, which ends with the overlap. This command sends the document's key and
secret to the controller's record of the registered instance, ``PUT <controller>/aps/2/applications/<id>``
(the instance id ``register`` kept in ``<document>.registration.json``), with the same provider staff
credentials, egress proxy and TLS checks as ``register``.

Checks, in this order, so nothing reaches the controller that it could not use:

1. the document exists and holds ``aps.auth.oauth`` (before the database is opened);
2. the registration record names the instance (or ``--instance-id`` does);
3. the database still has that key, and the document's secret is one of its active secrets (not revoked,
   not expired): handing over a secret the endpoint no longer accepts would lock the controller out.

The controller simulator implements the call. A controller that does not take it answers 404 or 405, and
the command says so: the document must then reach the controller's operator some other way before the
overlap ends.
"""

from __future__ import annotations

import argparse
import hmac
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from endpoint.aps.headers import controller_base
from endpoint.config.settings import Settings
from endpoint.provisioning.instance import read_instance_document
from endpoint.provisioning.register import _auth, add_controller_access, send_json
from models import Consumer, ConsumerSecret, init_database
from models.db import utcnow
from proxy.controller import controller_message, controller_url


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--instance-json",
        default="var/app_instance.json",
        help="the document rotate-key rewrote (its key and secret are sent)",
    )
    parser.add_argument(
        "--controller", help="controller base URL (default: the one register recorded next to the document)"
    )
    parser.add_argument("--instance-id", help="the instance (default: the one register recorded)")
    add_controller_access(parser)
    parser.add_argument("--timeout", type=float, default=30.0, help="read timeout in seconds")


def run(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    path = Path(args.instance_json)
    document = read_instance_document(path)
    if document is None:
        raise ValueError(
            f"--instance-json {path}: no instance document there; pass the document rotate-key rewrote"
        )
    oauth = document.get("aps", {}).get("auth", {}).get("oauth", {})
    key, secret = oauth.get("key"), oauth.get("secret")
    if not isinstance(key, str) or not isinstance(secret, str):
        raise ValueError(f"{path}: no aps.auth.oauth.key and .secret to hand over")
    record = _registration(path)
    instance_id = args.instance_id or record.get("instance_id")
    base_text = args.controller or record.get("controller")
    if not instance_id or not base_text:
        raise ValueError(
            f"{path.name}.registration.json: no registration recorded next to the document; "
            "pass --controller and --instance-id (register records both)"
        )
    base = controller_base(base_text, development_mode=args.allow_http)
    _auth(args, environ)  # before the database: missing credentials change nothing
    secret_id = _active_secret_id(settings, key, secret)
    url = controller_url(base, f"aps/2/applications/{quote(instance_id, safe='')}")
    body = {"aps": {"id": instance_id, "auth": {"oauth": {"key": key, "secret": secret}}}}
    response = send_json("hand-over-key", "PUT", url, body, args, settings, environ)
    if isinstance(response, int):
        return response
    if response.status_code in (404, 405):
        print(
            f"hand-over-key: {base} does not take new credentials for instance {instance_id} "
            f"(HTTP {response.status_code}: {controller_message(response.text)}); give its operator the "
            "document before the overlap ends",
            file=sys.stderr,
        )
        return 1
    if not 200 <= response.status_code < 300:
        print(
            f"hand-over-key: the controller refused the new secret (HTTP {response.status_code}): "
            f"{controller_message(response.text)}",
            file=sys.stderr,
        )
        return 1
    print(f"handed over to {base}: instance {instance_id} now holds secret #{secret_id} of {key}")
    print("the connector signs its own calls with whichever secret the controller last signed with;")
    print("once the controller works with the new one, end the old one: connector revoke-key --secret-id N")
    return 0


def _registration(path: Path) -> dict[str, Any]:
    record_path = path.with_name(path.name + ".registration.json")
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise ValueError(f"{record_path}: not JSON ({e})") from None
    return record if isinstance(record, dict) else {}


def _active_secret_id(settings: Settings, key: str, secret: str) -> int:
    """The id of ``secret`` among ``key``'s active secrets. :raise ValueError: unknown key, or a secret
    the endpoint no longer accepts (revoked, expired) or never had."""
    database = init_database(settings.database, create=False)
    now = utcnow()
    with database.connection_context():
        consumer = Consumer.get_or_none(Consumer.key == key)
        if consumer is None:
            raise ValueError(f"consumer key {key!r} of the document is not in the database")
        rows = ConsumerSecret.select().where(ConsumerSecret.consumer == consumer).order_by(ConsumerSecret.id)
        for row in rows:
            if hmac.compare_digest(row.secret.encode(), secret.encode()):
                if row.not_after is not None and row.not_after <= now:
                    raise ValueError(
                        f"the document's secret (#{row.id}) has ended: run rotate-key for a new one first"
                    )
                return int(row.id)
    raise ValueError(
        f"the document's secret is not a secret of {key}: rotate-key writes the one to hand over"
    )
