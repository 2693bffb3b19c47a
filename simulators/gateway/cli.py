"""Command line of the gateway simulator: callbacks as the Acronis API Callback Gateway sends them.

    python -m simulators.gateway --url CALLBACK_URL [--keys-dir D --ca-bundle F --proxy URL] COMMAND ...

Commands: ``callback`` (one callback, with a valid or a deliberately broken token), ``scenario NAME``
(``mirroring``, ``mapping``, ``authorization``; steps printed one a line), ``jwks ACTION`` (rotate, withhold,
publish the identity provider's keys, or take its JWKS down, at the Acronis API simulator).
Tokens are signed with the newest key of the simulator's key ring (``--keys-dir``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import requests

from simulators.controller.callbacks import cyberapp_auth
from simulators.gateway import envelopes, jwks_cmd, scenario_cmd
from simulators.gateway.sender import GatewaySender, response_body, ring_signing_key
from simulators.gateway.tokens import AUDIENCE, ISSUER, TOKEN_KINDS, TokenFactory


def add_credentials(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--login", help="X-CyberApp-Auth identity (none: the header is not sent)")
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("--password-env", help="environment variable holding the password")
    secret.add_argument("--password-file", help="file holding the password (first line)")


def credentials(args: argparse.Namespace) -> str | None:
    """X-CyberApp-Auth from --login and the password source. :raise ValueError: a login without a password."""
    if not args.login:
        return None
    if args.password_env:
        password = os.environ.get(args.password_env, "")
    elif args.password_file:
        password = Path(args.password_file).read_text(encoding="utf-8").splitlines()[0]
    else:
        raise ValueError("--login needs --password-file or --password-env")
    return cyberapp_auth(args.login, password)


def configure_callback(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("callback", help="callback id without prefix, e.g. a.p.partner.mirroring.enable.v1.0")
    parser.add_argument("--payload", help="payload JSON (the key is left out when absent)")
    parser.add_argument("--tenant", default=envelopes.DEFAULT_TENANT, help="context.tenant_id")
    parser.add_argument("--endpoint-id", help="context.endpoint_id and the token's scope role")
    parser.add_argument("--token", default="valid", choices=list(TOKEN_KINDS), help="the token to send")
    parser.add_argument("--extra", default="{}", help="X-CyberApp-Extra as JSON (base64-encoded for you)")
    add_credentials(parser)


def run_callback(args: argparse.Namespace, sender: GatewaySender, auth: str | None) -> int:
    payload = json.loads(args.payload) if args.payload else None
    body = envelopes.envelope(
        args.callback,
        payload,
        endpoint=args.endpoint_id or envelopes.endpoint_id(args.callback, args.app_code),
        tenant_id=args.tenant,
        datacenter_url=args.datacenter,
    )
    response = sender.send(body, token_kind=args.token, cyberapp_auth=auth, extra=json.loads(args.extra))
    print(f"HTTP {response.status_code}")
    answer = response_body(response)
    print(json.dumps(answer, indent=2) if not isinstance(answer, str) else answer)
    return 0 if response.status_code < 400 else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.gateway",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url", help="the callback URL registered for the CyberApp (e.g. https://host/callback)"
    )
    parser.add_argument(
        "--keys-dir", type=Path, default=Path("var/local/acronis-keys"), help="the simulator's key ring"
    )
    parser.add_argument("--ca-bundle", help="CA bundle to verify the callback URL's certificate")
    parser.add_argument("--proxy", help="HTTP proxy to send through")
    parser.add_argument("--issuer", default=ISSUER, help="the token's iss")
    parser.add_argument("--audience", default=AUDIENCE, help="the token's aud")
    parser.add_argument("--app-code", default=envelopes.DEFAULT_APP_CODE, help="in the default endpoint ids")
    parser.add_argument("--datacenter", default=envelopes.DEFAULT_DATACENTER, help="context.datacenter_url")
    sub = parser.add_subparsers(dest="command", required=True)
    configure_callback(sub.add_parser("callback", help="send one callback"))
    scenario = sub.add_parser("scenario", help="run a verification scenario")
    scenario_cmd.configure(scenario)
    add_credentials(scenario)
    jwks_cmd.configure(
        sub.add_parser("jwks", help="the identity provider's keys at the Acronis API simulator")
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "jwks":
        return jwks_cmd.run(args)
    if not args.url:
        parser.error("--url is required for callback and scenario")
    try:
        auth = credentials(args)
        ring_signing_key(args.keys_dir)  # fail early, and clearly, without a key ring
    except (OSError, ValueError) as e:
        print(f"gateway simulator: {e}", file=sys.stderr)
        return 2
    tokens = TokenFactory(lambda: ring_signing_key(args.keys_dir), issuer=args.issuer, audience=args.audience)
    sender = GatewaySender(args.url, tokens, proxy=args.proxy, verify=args.ca_bundle or True)
    try:
        if args.command == "callback":
            return run_callback(args, sender, auth)
        return scenario_cmd.run(args, sender, auth)
    except requests.RequestException as e:
        print(f"gateway simulator: {type(e).__name__}: {e}", file=sys.stderr)
        return 3
    finally:
        sender.close()
