"""``connector init``: schema, root partner and admin, OAuth consumer, and the filled instance document.

    connector init --db sqlite:///var/connector.db --public-url https://connector.example.com/ \
        --admin-login admin [--demo --seed 1] [--instance-json var/app_instance.json]

The admin password comes from CONNECTOR_ADMIN_PASSWORD or --admin-password (never echoed). Re-running is
safe: nothing is duplicated, keys are never replaced silently, an existing admin's password changes only
with --reset-admin-password. Run bare on a terminal (``bootstrap.py``), it asks for each value.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from endpoint.auth.passwords import make_hasher
from endpoint.config.settings import Settings
from endpoint.provisioning.demo import POSTMAN_PARTNER_ID, seed_demo
from endpoint.provisioning.instance import (
    PackageInfo,
    check_instance_directory,
    check_not_replacing,
    ensure_consumer,
    instance_document,
    write_instance_document,
)
from endpoint.provisioning.tenancy import (
    MIN_ADMIN_PASSWORD,
    admin_has_password,
    check_admin_password,
    ensure_admin,
    ensure_root_partner,
)
from models import init_database, migrate

DEFAULT_INSTANCE_JSON = "var/app_instance.json"
DEFAULT_DB = "sqlite:///var/connector.db"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--org-name", default="Vendor Root", help="name of the root partner organization")
    parser.add_argument("--admin-login", default="admin")
    parser.add_argument("--admin-password", help="admin password (or env CONNECTOR_ADMIN_PASSWORD)")
    parser.add_argument(
        "--reset-admin-password", action="store_true", help="change an existing admin's password"
    )
    parser.add_argument("--demo", action="store_true", help="add the deterministic demo tenancy")
    parser.add_argument("--seed", type=int, default=1, help="seed of the demo data")
    parser.add_argument(
        "--instance-json", default=DEFAULT_INSTANCE_JSON, help="where the filled document goes"
    )
    parser.add_argument("--key-prefix", default="connector", help="consumer key prefix (<prefix>-<32 hex>)")
    package = PackageInfo()
    parser.add_argument("--package-type", default=package.type, help="APP-META package id URI")
    parser.add_argument("--package-version", default=package.version)
    parser.add_argument("--package-release", default=package.release)
    parser.add_argument("--app-settings", help="JSON file with initial app settings (top-level keys)")


def run(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    settings.endpoint.require_public_url()
    password = args.admin_password or environ.get("CONNECTOR_ADMIN_PASSWORD") or None
    if password is not None:
        check_admin_password(args.admin_login, password)
    app_settings = _load_app_settings(args.app_settings)
    package = PackageInfo(args.package_type, args.package_version, args.package_release)
    check_instance_directory(Path(args.instance_json))
    database = init_database(settings.database)
    applied = migrate(database)
    hasher = make_hasher(settings.auth)
    with database.connection_context():
        if password is None and not admin_has_password(args.admin_login):
            # Before anything is written: an admin nobody can log in as is a setup that silently failed.
            raise ValueError(
                f"the admin {args.admin_login!r} needs a password: pass --admin-password or set "
                f"CONNECTOR_ADMIN_PASSWORD (at least {MIN_ADMIN_PASSWORD} characters)"
            )
        root, root_created = ensure_root_partner(args.org_name, POSTMAN_PARTNER_ID if args.demo else None)
        admin = ensure_admin(
            root, args.admin_login, password, hasher.hash, reset_password=args.reset_admin_password
        )
        credentials = ensure_consumer(args.key_prefix)
        path = Path(args.instance_json)
        check_not_replacing(path, credentials)
        write_instance_document(
            path, instance_document(settings.endpoint.public_base_url, credentials, package, app_settings)
        )
        demo = seed_demo(root, args.seed) if args.demo else None
    print(f"schema: {'migrated to ' + ', '.join(map(str, applied)) if applied else 'up to date'}")
    print(f"root partner: {root.name} ({root.id}){' created' if root_created else ''}")
    print(
        f"admin: {admin.login}{' created' if admin.created else ''}"
        f"{' (password set)' if admin.password_set else ''}"
    )
    print(f"consumer key: {credentials.key}{' created' if credentials.created else ' (existing)'}")
    print(f"instance document: {path} (mode 0600; holds the consumer secret; POST it to the controller)")
    if demo is not None:
        print(
            f"demo: {demo.partners} partners, {demo.customers} customers, {demo.users} users"
            f"{'' if demo.created else ' (already present)'}; tenant {demo.mapped_tenant_id} is mapped"
        )
    return 0


def _load_app_settings(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    with open(path, encoding="utf-8") as fh:
        document = json.load(fh)
    if not isinstance(document, dict) or "aps" in document:
        raise ValueError("--app-settings must be a JSON object of app properties (no 'aps' key)")
    return document


def prompt_arguments() -> list[str]:
    """Ask for the essentials when run bare on a terminal; returns equivalent flags."""
    print("Connector bootstrap (press Enter to accept a default)")
    public_url = input("Public URL the controller calls (aps.endpoint): ").strip()
    db_url = input(f"Database URL [{DEFAULT_DB}]: ").strip() or DEFAULT_DB
    login = input("Admin login [admin]: ").strip() or "admin"
    while True:
        password = getpass.getpass(f"Admin password (at least {MIN_ADMIN_PASSWORD} characters): ")
        try:
            check_admin_password(login, password)
        except ValueError as e:
            print(f"{e}; try again")
            continue
        if password == getpass.getpass("Repeat: "):
            break
        print("the passwords differ; try again")
    os.environ["CONNECTOR_ADMIN_PASSWORD"] = password  # never on a command line (ps would show it)
    demo = input("Add demo data? [y/N]: ").strip().lower() in ("y", "yes")
    return ["--public-url", public_url, "--db", db_url, "--admin-login", login] + (["--demo"] if demo else [])
