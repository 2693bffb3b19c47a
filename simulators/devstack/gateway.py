"""The local stack's gateway mode (``--gateway jwt|both``): a partner account for the gateway's mapping
scenario, and the ready-to-run gateway calls the stack prints.

The mapping scenario ends with enablement.reset, which unmaps every customer of the partner it acts for.
It therefore runs as the admin of a demo sub-partner ("Reseller North"), never of the root partner whose
customer mapping the demo's users_read call relies on. That admin is created here, once, with a password
generated on the first start and kept owner-only in the data directory, like the demo admin's.

    python -m simulators.devstack.gateway --config var/local/connector.toml --login reseller-admin
    (password from $CONNECTOR_GATEWAY_PARTNER_PASSWORD)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from endpoint.auth.passwords import make_hasher
from endpoint.config.settings import load_settings
from endpoint.provisioning.tenancy import ensure_admin
from models import PARTNER, Organization, init_database
from simulators.devstack.layout import (
    DEMO_TENANT,
    GATEWAY_LOGIN,
    JWKS_URL,
    StackFiles,
    StackOptions,
    shown,
)

PARTNER_NAME = "Reseller North"  # a demo sub-partner with customers at two depths
PASSWORD_ENV = "CONNECTOR_GATEWAY_PARTNER_PASSWORD"


def seed_partner_admin(config: str, login: str, password: str) -> str:
    """Give the demo partner ``PARTNER_NAME`` an admin ``login``; returns the partner's id.

    :raise LookupError: the demo data is missing. :raise ValueError: the login belongs elsewhere.
    """
    settings = load_settings(config, os.environ)
    database = init_database(settings.database)
    hasher = make_hasher(settings.auth)
    try:
        with database.connection_context():
            partner = Organization.get_or_none(
                Organization.name == PARTNER_NAME, Organization.kind == PARTNER
            )
            if partner is None:
                raise LookupError(f"no partner named {PARTNER_NAME!r}: the stack loads the demo data first")
            ensure_admin(partner, login, password, hasher.hash)
    finally:
        database.close()
    return str(partner.id)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.devstack.gateway", description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--login", default=GATEWAY_LOGIN)
    args = parser.parse_args(argv)
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        print(f"gateway partner: set {PASSWORD_ENV}", file=sys.stderr)
        return 2
    try:
        partner_id = seed_partner_admin(args.config, args.login, password)
    except (LookupError, ValueError) as e:
        print(f"gateway partner: {e}", file=sys.stderr)
        return 2
    print(f"gateway partner: {PARTNER_NAME} ({partner_id}), admin {args.login}")
    return 0


def summary_rows(options: StackOptions, files: StackFiles) -> list[tuple[str, str]]:
    """The gateway mode's lines in the stack's table of URLs and files."""
    accepted = "Bearer JWT only" if options.gateway == "jwt" else "OAuth 1.0 or Bearer JWT (by scheme)"
    return [
        ("/callback accepts", accepted),
        ("identity provider (JWKS)", f"{JWKS_URL} -> Acronis API simulator"),
        ("signing keys (0600)", f"{shown(files.keys)}/"),
        ("gateway partner admin", f"{GATEWAY_LOGIN} (password in {shown(files.gateway_password)})"),
    ]


def summary_lines(options: StackOptions, files: StackFiles) -> list[str]:
    """The gateway calls printed when the stack is up (run from the repository root)."""
    gateway = (
        f".venv/bin/python -m simulators.gateway --url {options.public_url}callback "
        f"--keys-dir {shown(files.keys)} --ca-bundle {shown(files.ca_cert)}"
    )
    state = f"--state {shown(files.gateway_state)}"
    partner = f"--login {GATEWAY_LOGIN} --password-file {shown(files.gateway_password)}"
    jwks = f".venv/bin/python -m simulators.gateway jwks --simulator http://{options.host}:{options.acronis_port}"
    return [
        "A callback as the Acronis API Callback Gateway sends it (a Bearer JWT signed with the simulator's",
        "keys, X-CyberApp-Auth, X-CyberApp-Extra); the endpoint verifies it with the JWKS it fetched from",
        "acronis.cloud through the outbound proxy:",
        f"  {gateway} callback vendor.app.users_read.v1.0 --tenant {DEMO_TENANT} \\",
        f"      --login {options.admin_login} --password-file {shown(files.admin_password)}",
        "Acronis verification, through the stack (mirrored enablement; mapped enablement as a demo partner;",
        "the three Authorization checks and other broken tokens):",
        f"  {gateway} scenario mirroring {state}",
        f"  {gateway} scenario mapping {state} {partner}",
        f"  {gateway} scenario authorization {state}",
        "The identity provider's keys (rotate, the 'unknown kid' fault: withhold/publish, JWKS down/up):",
        f"  {jwks} rotate",
    ]


if __name__ == "__main__":
    sys.exit(main())
