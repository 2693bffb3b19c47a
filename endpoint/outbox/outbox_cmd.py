"""``python -m endpoint outbox list|retry|purge|demo``: the operator's view of the outbox."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from endpoint.config.settings import Settings
from endpoint.errors import PayloadError
from endpoint.outbox.demo import enqueue_demo
from endpoint.outbox.payloads import PayloadRules
from models import init_database
from models.db import utcnow
from models.outbox import DEAD, PENDING, STATUSES, OutboxItem


def configure_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="list items (dead letters by default)")
    listing.add_argument("--status", choices=STATUSES, default=DEAD)
    listing.add_argument("--tenant", help="only this Acronis tenant id")
    listing.add_argument("--limit", type=int, default=50)
    for name, text in (
        ("retry", "queue dead letters again (attempts reset)"),
        ("purge", "delete dead letters"),
    ):
        action = actions.add_parser(name, help=text)
        chosen = action.add_mutually_exclusive_group(required=True)
        chosen.add_argument("--id", type=int, action="append", dest="ids", help="an item id (repeatable)")
        chosen.add_argument("--all", action="store_true", help="every dead letter (see --tenant)")
        action.add_argument("--tenant", help="only this Acronis tenant id")
    demo = actions.add_parser("demo", help="queue deterministic demo items for every mapped tenant")
    demo.add_argument("--count", type=int, default=20)
    demo.add_argument("--seed", type=int, default=1)


def run(args: argparse.Namespace, settings: Settings) -> int:
    database = init_database(settings.database, create=False)
    with database.connection_context():
        if args.action == "list":
            return _list(args)
        if args.action == "demo":
            try:
                queued = enqueue_demo(args.seed, args.count, PayloadRules.from_settings(settings))
            except PayloadError as e:
                print(f"demo: {e.message}", file=sys.stderr)
                return 1
            print(f"demo: {queued} item(s) queued (seed {args.seed})")
            return 0
        query = OutboxItem.status == DEAD
        if args.ids:
            query &= OutboxItem.id.in_(args.ids)
        if args.tenant:
            query &= OutboxItem.tenant_id == args.tenant
        with database.atomic():
            if args.action == "retry":
                count = (
                    OutboxItem.update(
                        status=PENDING,
                        attempts=0,
                        next_attempt_at=utcnow(),
                        claimed_by=None,
                        lease_expires=None,
                    )
                    .where(query)
                    .execute()
                )
            else:
                count = OutboxItem.delete().where(query).execute()
        print(f"{args.action}: {count} dead letter(s)")
        return 0


def _list(args: argparse.Namespace) -> int:
    query = OutboxItem.select().where(OutboxItem.status == args.status)
    if args.tenant:
        query = query.where(OutboxItem.tenant_id == args.tenant)
    rows = list(query.order_by(OutboxItem.id).limit(args.limit))
    print(f"{'id':>8}  {'kind':<8}  {'tenant':<36}  {'attempts':>8}  {'created (UTC)':<19}  last error")
    for row in rows:
        created = (
            row.created_at.strftime("%Y-%m-%d %H:%M:%S") if isinstance(row.created_at, dt.datetime) else ""
        )
        error = (row.last_error or "").replace("\n", " ")[:80]
        print(f"{row.id:>8}  {row.kind:<8}  {row.tenant_id:<36}  {row.attempts:>8}  {created:<19}  {error}")
    print(f"{len(rows)} item(s) with status {args.status}")
    return 0
