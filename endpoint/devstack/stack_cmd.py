"""``python -m endpoint stack``: bring the local stack up with demo data; Ctrl-C stops everything."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from endpoint.devstack.layout import CALLBACK_AUTH
from endpoint.devstack.stack import StackOptions, run_stack
from endpoint.settings import Settings


def configure_parser(parser: argparse.ArgumentParser) -> None:
    defaults = StackOptions()
    parser.add_argument(
        "--data-dir", type=Path, default=defaults.data_dir, help="where the stack keeps its files"
    )
    for name in ("endpoint", "inbound", "outbound", "acronis", "controller"):
        parser.add_argument(f"--{name}-port", type=int, default=getattr(defaults, f"{name}_port"))
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of the demo data")
    parser.add_argument(
        "--demo-items",
        type=int,
        default=defaults.demo_items,
        help="alerts/workloads queued for the outbox worker at start",
    )
    parser.add_argument(
        "--no-proxies",
        action="store_true",
        help="only the endpoint, on a plain-http public URL (no mitmproxy, simulators or worker)",
    )
    parser.add_argument(
        "--gateway",
        choices=list(CALLBACK_AUTH),
        default=defaults.gateway,
        help="how /callback authenticates: oauth1 (the controller's signature), jwt (the Acronis gateway's "
        "Bearer JWT, keys fetched through the outbound proxy; mirroring on), both (chosen by the scheme)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="a fault drill for the outbound proxy, e.g. '503@eu8-cloud.acronis.com?rate=0.3' "
        "(see proxy/mitm/README.md)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """The stack writes its own config; only the flags above (and --host) apply."""
    if args.gateway != "oauth1" and args.no_proxies:
        print(
            "stack: --gateway jwt needs the proxies (the JWKS comes through the outbound one)",
            file=sys.stderr,
        )
        return 2
    options = StackOptions(
        data_dir=args.data_dir,
        host=args.host or StackOptions().host,
        endpoint_port=args.endpoint_port,
        inbound_port=args.inbound_port,
        outbound_port=args.outbound_port,
        acronis_port=args.acronis_port,
        controller_port=args.controller_port,
        seed=args.seed,
        demo_items=args.demo_items,
        proxies=not args.no_proxies,
        gateway=args.gateway,
    )
    return run_stack(options, faults=tuple(args.fault))
