"""Command line of the controller simulator: signed callbacks, named scenarios, and the controller API.

    python -m simulators.controller [--instance F --connect-to URL --proxy URL --ca-bundle F] COMMAND ...

Commands: ``callback`` (one CyberApp callback), ``scenario NAME`` (lifecycle steps, printed one a line),
``serve`` (a minimal /aps/2 API that verifies the connector's signed callbacks).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import requests

from simulators.controller import scenario_cmd, serve_cmd
from simulators.controller.callbacks import callback_envelope, cyberapp_auth
from simulators.controller.signing import ControllerSigner, Instance

Command = tuple[
    Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace, ControllerSigner], int]
]


def configure_callback(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("callback", help="callback id without prefix, e.g. vendor.app.users_read.v1.0")
    parser.add_argument("--payload", help="payload JSON (omitted when absent)")
    parser.add_argument("--tenant", default="00000000-0000-0000-0000-000000000000", help="context.tenant_id")
    parser.add_argument(
        "--datacenter", default="https://eu8-cloud.acronis.com", help="context.datacenter_url"
    )
    parser.add_argument("--login", required=True, help="X-CyberApp-Auth identity")
    secret = parser.add_mutually_exclusive_group(required=True)
    secret.add_argument("--password-env", help="environment variable holding the password")
    secret.add_argument("--password-file", help="file holding the password (first line)")


def run_callback(args: argparse.Namespace, signer: ControllerSigner) -> int:
    if args.password_env:
        password = os.environ.get(args.password_env, "")
    else:
        password = Path(args.password_file).read_text(encoding="utf-8").splitlines()[0]
    payload = json.loads(args.payload) if args.payload else None
    envelope = callback_envelope(
        args.callback, payload, tenant_id=args.tenant, datacenter_url=args.datacenter
    )
    response = signer.send(
        "POST", "callback", envelope, {"X-CyberApp-Auth": cyberapp_auth(args.login, password)}
    )
    return _show(response)


def _show(response: requests.Response) -> int:
    print(f"HTTP {response.status_code}")
    try:
        print(json.dumps(response.json(), indent=2))
    except ValueError:
        print(response.text[:2000])
    return 0 if response.status_code < 400 else 1


COMMANDS: dict[str, Command] = {
    "callback": (configure_callback, run_callback),
    "scenario": (scenario_cmd.configure, scenario_cmd.run),
    "serve": (serve_cmd.configure, serve_cmd.run),  # type: ignore[dict-item]
}
WITHOUT_INSTANCE = {"serve"}  # runs without an instance document (it learns keys from registrations)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.controller", description=__doc__)
    parser.add_argument("--instance", default="var/app_instance.json", help="application-instance document")
    parser.add_argument("--connect-to", help="send to this base URL instead of resolving aps.endpoint")
    parser.add_argument("--proxy", help="HTTP proxy to send through (the APS proxy's outbound side)")
    parser.add_argument("--ca-bundle", help="CA bundle to verify the connector's certificate")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (configure, _) in COMMANDS.items():
        configure(sub.add_parser(name))
    args = parser.parse_args(argv)
    if args.command in WITHOUT_INSTANCE:
        instance = serve_cmd.load_instance(args.instance)
        if instance is None:
            return int(COMMANDS[args.command][1](args, None))  # type: ignore[arg-type]
    else:
        try:
            instance = Instance.from_document(Path(args.instance))
        except (OSError, ValueError) as e:
            print(f"controller simulator: {e}", file=sys.stderr)
            return 2
    signer = ControllerSigner(
        instance, connect_to=args.connect_to, proxy=args.proxy, verify=args.ca_bundle or True
    )
    try:
        return COMMANDS[args.command][1](args, signer)
    except requests.RequestException as e:
        print(f"controller simulator: {type(e).__name__}: {e}", file=sys.stderr)
        return 3
    finally:
        signer.close()
