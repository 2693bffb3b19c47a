"""``connector doctor``: one line per check of what the service needs, and what to do when one fails.

Checks, in the order a failure explains the next: the configuration, the database (reachable, schema
current; with mirroring, the parent of mirrored partners is a partner organization), the outbound proxy
(configured, its CA and password present, accepting connections), then each pinned APS controller and
each configured Acronis data center through that proxy (any HTTP answer counts as reachable: doctor has no
credentials to spend). Exit 0 when every check passed, else 1.
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import peewee as pw
import requests

from endpoint.commands.problems import describe_request_error
from endpoint.config.settings import Settings
from models import MIGRATIONS, PARTNER, ApsInstance, Organization, init_database
from models.aps import ACTIVE
from models.diagnose import describe_database_error, redacted
from models.migrations import current_version
from proxy.errors import ConnectorError
from proxy.session import build_session

TIMEOUT = 5.0  # seconds per network check


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--offline", action="store_true", help="skip the proxy, controller and Acronis checks"
    )


def run(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    failed = 0
    for check in checks(settings, environ, offline=args.offline):
        failed += not check.ok
        print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<10} {check.detail}", flush=True)
    print("all checks passed" if not failed else f"{failed} check(s) failed")
    return 1 if failed else 0


def checks(settings: Settings, environ: Mapping[str, str], *, offline: bool = False) -> Iterator[Check]:
    public = settings.endpoint.public_base_url
    yield Check(
        "config",
        bool(public),
        f"public URL {public}" if public else "endpoint.public_base_url is not set (needed to serve)",
    )
    database = yield from _database(settings)
    if database is not None and settings.callbacks.mirroring:
        yield _mirroring_parent(database, settings.callbacks.mirrored_partners_parent)
    if offline:
        return
    session = yield from _proxy(settings, environ)
    if session is None:
        return
    targets: list[tuple[str, str]] = [("acronis", dc.url) for dc in settings.acronis.datacenters]
    if database is not None:
        with database.connection_context():
            pinned = ApsInstance.select(ApsInstance.controller_uri).where(ApsInstance.status == ACTIVE)
            targets += sorted({("controller", row.controller_uri) for row in pinned})
    if not targets:
        yield Check("outbound", True, "no data center configured and no controller pinned yet")
    for name, url in targets:
        yield _reach(session, name, url)


def _database(settings: Settings) -> Iterator[Check]:
    url = settings.database.url
    try:
        database = init_database(settings.database, create=False)
        with database.connection_context():
            version = current_version(database)
    except pw.PeeweeException as e:
        yield Check("database", False, describe_database_error(e, url))
        return None
    latest = max(m.version for m in MIGRATIONS)
    if version < latest:
        yield Check(
            "database", False, f"{redacted(url)}: schema {version} of {latest}: run `connector migrate`"
        )
    else:
        yield Check("database", True, f"{redacted(url)}: schema version {version} (current)")
    return database


def _mirroring_parent(database: pw.Database, parent_id: str) -> Check:
    """Mirrored partners are created under callbacks.mirrored_partners_parent: it must be a partner."""
    with database.connection_context():
        parent = Organization.get_or_none(Organization.id == parent_id.lower())
    if parent is None or parent.kind != PARTNER:
        found = "no organization" if parent is None else f"a {parent.kind}"
        return Check(
            "mirroring",
            False,
            f"callbacks.mirrored_partners_parent {parent_id} is {found}: name a partner organization "
            "(`connector init` prints the root partner's id); until then partner.mirroring.enable gets 503",
        )
    return Check("mirroring", True, f"mirrored partners go under {parent.name} ({parent.id})")


def _proxy(settings: Settings, environ: Mapping[str, str]) -> Iterator[Check]:
    proxy = settings.proxy
    if proxy.ca_bundle and not os.path.isfile(proxy.ca_bundle):
        yield Check("proxy", False, f"proxy.ca_bundle {proxy.ca_bundle}: no such file")
        return None
    try:
        session = build_session(proxy, environ)
    except ConnectorError as e:
        yield Check("proxy", False, str(e))
        return None
    if proxy.url is None:
        yield Check("proxy", True, "none configured: outbound calls go direct")
        return session
    parts = urlsplit(proxy.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=TIMEOUT).close()
    except OSError as e:
        yield Check("proxy", False, f"{proxy.display_url}: {e.strerror or e}: is the proxy running?")
        return None
    yield Check("proxy", True, f"{proxy.display_url} accepts connections (CA: {proxy.ca_bundle or 'system'})")
    return session


def _reach(session: requests.Session, name: str, url: str) -> Check:
    try:
        with session.get(url, timeout=TIMEOUT, allow_redirects=False) as response:
            return Check(name, True, f"{url} answers (HTTP {response.status_code})")
    except ConnectorError as e:
        return Check(name, False, f"{url}: {e}")
    except requests.RequestException as e:
        return Check(name, False, describe_request_error(e))
