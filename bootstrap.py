"""bootstrap.py: the ``connector`` command under the name this project has always promised.

    python bootstrap.py --db sqlite:///var/connector.db --public-url https://connector.example.com/ \
        --admin-login admin [--demo --seed 1] [--instance-json var/app_instance.json]

Without a verb it is ``connector init`` (run bare on a terminal, it asks for each value); with one
(``register``, ``rotate-key``, ``list-keys``, ...) it is that verb. ``bootstrap.py --help`` lists them all.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

from endpoint.commands.cli import VERBS
from endpoint.commands.cli import main as connector
from endpoint.provisioning.init_cmd import prompt_arguments


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv and sys.stdin.isatty():
        argv = prompt_arguments()
    if not any(token in VERBS for token in argv) and not {"-h", "--help"} & set(argv):
        argv = ["init", *argv]
    return connector(argv, environ, prog="bootstrap.py")


if __name__ == "__main__":
    sys.exit(main())
