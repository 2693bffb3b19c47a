"""``python -m endpoint migrate``: create or upgrade the schema to the newest version."""

from __future__ import annotations

import argparse

from endpoint.config.settings import Settings
from models import init_database, migrate


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """No flags beyond the common settings flags."""


def run(args: argparse.Namespace, settings: Settings) -> int:
    database = init_database(settings.database)
    applied = migrate(database)
    print(f"schema up to date (applied: {', '.join(map(str, applied)) or 'nothing'})")
    return 0
