"""``python -m simulators.controller serve``: the controller's /aps/2 API, verifying signed callbacks."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from simulators.controller.scenarios import APP_TYPE, DEMO_ACCOUNT_ID, demo_account
from simulators.controller.server import ControllerServer
from simulators.controller.signing import ControllerSigner, Instance


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls-cert", help="certificate chain (PEM); with --tls-key serves https")
    parser.add_argument("--tls-key")
    parser.add_argument(
        "--public-uri",
        "--public-base",
        dest="public_uri",
        help="the URL callers sign, i.e. the APS-Controller-URI the connector was given; default: our own",
    )
    parser.add_argument("--record", help="append one JSON line per received request to this file")
    parser.add_argument("--token-env", help="variable holding the APS-Token accepted on /aps/2/applications")
    parser.add_argument(
        "--account-delay",
        type=float,
        default=0.0,
        help=f"seconds a read of an account resource takes (the demo account {DEMO_ACCOUNT_ID} is known)",
    )
    parser.add_argument(
        "--create-instances",
        action="store_true",
        help="on POST /aps/2/applications, create the instance on the connector (POST /app) like APSC",
    )


def run(args: argparse.Namespace, signer: ControllerSigner | None) -> int:
    tls = (args.tls_cert, args.tls_key) if args.tls_cert and args.tls_key else None
    token = os.environ.get(args.token_env) if args.token_env else None
    server = ControllerServer(
        args.host, args.port, tls=tls, public_base=args.public_uri, token=token, record_path=args.record
    )
    server.state.account_delay = args.account_delay
    server.put(DEMO_ACCOUNT_ID, demo_account())  # the subscriber of the scenarios' async tenant
    if signer is not None:  # the --instance document: its key may already call us back
        server.trust(signer.instance.key, signer.instance.secret)
    if args.create_instances:
        server.state.on_register = lambda document, instance_id: create_on_connector(
            args, server.public_base, document, instance_id
        )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(json.dumps({"listening": server.url, "public_base": server.public_base}), flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    return 0


def create_on_connector(
    args: argparse.Namespace, public_base: str, document: dict[str, Any], instance_id: str
) -> int:
    """What APSC does after a registration: POST /app signed with the new instance's key."""
    instance = Instance.from_mapping(document)
    signer = ControllerSigner(
        instance, connect_to=args.connect_to, proxy=args.proxy, verify=args.ca_bundle or True
    )
    settings = {k: v for k, v in document.items() if k != "aps"}
    try:
        response = signer.send(
            "POST",
            "app",
            {"aps": {"type": APP_TYPE, "id": instance_id}, **settings},
            instance_id=instance_id,
            controller_uri=public_base,
        )
        return response.status_code
    finally:
        signer.close()


def load_instance(path: str) -> Instance | None:
    try:
        return Instance.from_document(Path(path))
    except (OSError, ValueError):
        return None
