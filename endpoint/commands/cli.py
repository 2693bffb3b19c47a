"""connector: one command for every operator task; each verb is a module of its own.

Shared options (--config, --db, --set...) may stand before or after the verb. A verb's help
shows only the options it reads. Errors a person can act on are one or two lines naming the setting and
the fix; exit code 2 is a configuration or usage problem, 1 a problem of the environment (a database
or proxy that cannot be reached, a missing file). --debug shows the traceback instead.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

from endpoint.config.loader import ConfigError
from endpoint.config.settings import Settings, load_settings


class Command(Protocol):
    """A verb's module: adds its own flags, then runs with the loaded settings (and the environment)."""

    def configure_parser(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace, settings: Settings) -> int: ...


@dataclass(frozen=True, slots=True)
class Verb:
    module: str
    help: str
    listens: bool = False  # takes --host/--port
    signs: bool = False  # takes --public-url (the URL the controller signs)


# name -> verb, in the order `connector --help` lists them. Modules are imported only when used.
VERBS: dict[str, Verb] = {
    "init": Verb(
        "endpoint.provisioning.init_cmd",
        "create the schema, root partner, admin, consumer key and the instance document",
        signs=True,
    ),
    "register": Verb("endpoint.provisioning.register", "POST the instance document to the controller"),
    "rotate-key": Verb(
        "endpoint.provisioning.rotate_key", "add a consumer secret; the old one works until not_after"
    ),
    "hand-over-key": Verb(
        "endpoint.provisioning.hand_over_key", "send the document's new secret (rotate-key) to the controller"
    ),
    "revoke-key": Verb("endpoint.provisioning.revoke_key", "end one consumer secret at once"),
    "list-keys": Verb(
        "endpoint.provisioning.list_keys", "consumer keys, secret ids, ages, expiry (no secrets)"
    ),
    "repin-controller": Verb(
        "endpoint.provisioning.repin", "move an APS instance to a new controller URI (allowlisted)"
    ),
    "serve": Verb(
        "endpoint.web.server", "serve the signed callback and APS endpoint", listens=True, signs=True
    ),
    "migrate": Verb("endpoint.commands.migrate", "create or upgrade the database schema and exit"),
    "push": Verb("endpoint.outbox.push_cmd", "deliver the outbox (and ingest the spool) to the Acronis API"),
    "outbox": Verb(
        "endpoint.outbox.outbox_cmd", "operator view of the outbox: list | show | retry | purge | demo"
    ),
    "stack": Verb(
        "simulators.devstack.stack_cmd",
        "run the local development stack with demo data; status | stop | restart NAME act on it",
        listens=True,
    ),
    "doctor": Verb(
        "endpoint.commands.doctor", "check config, database, proxy, controller and Acronis reachability"
    ),
}
COMMANDS = {name: (verb.module, verb.help) for name, verb in VERBS.items()}  # name -> (module, help)
_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)'")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        match = _INVALID_CHOICE.search(message)
        if match:
            close = difflib.get_close_matches(match.group(1), VERBS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (verbs: {', '.join(VERBS)})"
            message = f"unknown verb {match.group(1)!r}{hint}"
        super().error(message)


def add_settings_flags(
    parser: argparse.ArgumentParser, *, listens: bool = True, signs: bool = True, default: Any = None
) -> None:
    """The shared options; ``default=argparse.SUPPRESS`` on a verb keeps what was given before the verb."""
    parser.add_argument("--config", default=default, help="TOML config file (default: $CONNECTOR_CONFIG)")
    parser.add_argument(
        "--db", default=default, help="database URL (sqlite:///path, postgresql://..., mysql://...)"
    )
    if signs:
        parser.add_argument(
            "--public-url", default=default, help="the public base URL the controller signs (aps.endpoint)"
        )
    if listens:
        parser.add_argument("--host", default=default, help="bind address")
        parser.add_argument("--port", type=int, default=default, help="bind port")
    parser.add_argument("--log-level", default=default, help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument(
        "--set",
        action="append",
        default=default if default is argparse.SUPPRESS else [],
        metavar="SECTION.KEY=VALUE",
        help="override any setting (repeatable)",
    )
    parser.add_argument(
        "--debug", action="store_true", default=default or False, help="show tracebacks of errors"
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
    for item in getattr(args, "set", None) or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected SECTION.KEY=VALUE")
        overrides[key.strip()] = value
    path = getattr(args, "config", None) or environ.get("CONNECTOR_CONFIG") or None
    return load_settings(path, environ, overrides)


def build_parser(prog: str = "connector") -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    parser = _Parser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_settings_flags(parser)
    verbs = parser.add_subparsers(dest="command", required=True, metavar="VERB")
    modules: dict[str, Command] = {}
    for name, verb in VERBS.items():
        module: Command = importlib.import_module(verb.module)  # type: ignore[assignment]
        sub = verbs.add_parser(name, help=verb.help, description=verb.help)
        add_settings_flags(sub, listens=verb.listens, signs=verb.signs, default=argparse.SUPPRESS)
        module.configure_parser(sub)
        modules[name] = module
    return parser, modules


def main(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None, *, prog: str = "connector"
) -> int:
    environ = os.environ if environ is None else environ
    parser, modules = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args, environ)
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    module = modules[args.command]
    try:
        if len(inspect.signature(module.run).parameters) == 3:  # provisioning verbs read secrets from it
            return int(module.run(args, settings, environ))  # type: ignore[call-arg]
        return int(module.run(args, settings))
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:
        if args.debug:
            raise
        from endpoint.commands.problems import explain  # only when something went wrong

        problem = explain(e, settings)
        if problem is None:
            raise
        print(f"{prog} {args.command}: {problem.message}", file=sys.stderr)
        return problem.exit_code
    except KeyboardInterrupt:
        return 130


def console() -> int:
    """The ``connector`` console script (pyproject.toml)."""
    return main()
