"""Command line: common settings flags, and a registry of subcommands each owned by its own module."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from endpoint.config_loader import ConfigError
from endpoint.settings import Settings, load_settings


class Command(Protocol):
    """A subcommand module: adds its own flags, then runs with the loaded settings."""

    def configure_parser(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace, settings: Settings) -> int: ...


# name -> (module, one-line help). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("endpoint.web.server", "serve the signed callback/APS endpoint"),
    "migrate": ("endpoint.migrate_cmd", "create or upgrade the database schema and exit"),
    "stack": ("endpoint.devstack.stack_cmd", "run the local development stack with demo data"),
    "push": ("endpoint.outbox.push_cmd", "deliver the outbox (and ingest the spool) to the Acronis API"),
    "outbox": ("endpoint.outbox.outbox_cmd", "operator view of the outbox: list | retry | purge | demo"),
}


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (default: $CONNECTOR_CONFIG)")
    parser.add_argument("--db", help="database URL (sqlite:///path, postgresql://..., mysql://...)")
    parser.add_argument("--public-url", help="the public base URL the controller signs (aps.endpoint)")
    parser.add_argument("--host", help="bind address")
    parser.add_argument("--port", type=int, help="bind port")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override any setting"
    )


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """:raise ConfigError: on a bad file, variable or flag."""
    overrides: dict[str, Any] = {}
    for flag, key in (
        ("db", "database.url"),
        ("public_url", "endpoint.public_base_url"),
        ("host", "server.host"),
        ("port", "server.port"),
        ("log_level", "logging.level"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[key] = value
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected SECTION.KEY=VALUE")
        overrides[key.strip()] = value
    path = args.config or environ.get("CONNECTOR_CONFIG") or None
    return load_settings(path, environ, overrides)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="python -m endpoint", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    modules: dict[str, Command] = {}
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text)
        add_settings_flags(sub_parser)
        module: Command = importlib.import_module(module_name)  # type: ignore[assignment]
        module.configure_parser(sub_parser)
        modules[name] = module
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args, environ)
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    return modules[args.command].run(args, settings)
