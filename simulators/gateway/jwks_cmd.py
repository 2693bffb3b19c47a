"""``python -m simulators.gateway jwks ACTION``: the identity provider's keys and faults at the Acronis API
simulator (its /_sim/jwks and /_sim/faults controls, called directly, never through a proxy).

Actions: ``show``; ``rotate`` (a new signing key, published; ``--keep`` older keys stay listed);
``withhold`` (the "unknown kid" fault: a new signing key the JWKS does not list); ``publish`` (list the
withheld keys again); ``down`` (the JWKS answers ``--status``, 503 by default, until ``up``); ``up``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import requests

ACTIONS = ("show", "rotate", "withhold", "publish", "down", "up")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument(
        "--simulator", default="http://127.0.0.1:9101", help="the Acronis API simulator's own address"
    )
    parser.add_argument("--keep", type=int, default=1, help="rotate/withhold: older keys kept in the ring")
    parser.add_argument("--status", type=int, default=503, help="down: the JWKS's answer")


def request_for(args: argparse.Namespace) -> tuple[str, str, Any]:
    """(method, path, JSON body) of the control call for ``args.action``."""
    if args.action == "show":
        return "GET", "/_sim/jwks", None
    if args.action in ("rotate", "withhold"):
        return "POST", f"/_sim/jwks/{args.action}", {"keep": args.keep}
    if args.action == "publish":
        return "POST", "/_sim/jwks/publish", None
    if args.action == "down":
        return "POST", "/_sim/faults", {"faults": [{"endpoint": "jwks", "status": args.status, "count": -1}]}
    return "DELETE", "/_sim/faults?endpoint=jwks", None


def run(args: argparse.Namespace) -> int:
    method, path, body = request_for(args)
    with requests.Session() as session:
        session.trust_env = False
        response = session.request(method, args.simulator.rstrip("/") + path, json=body, timeout=30)
    print(f"HTTP {response.status_code}")
    if response.content:
        try:
            print(json.dumps(response.json(), indent=2))
        except ValueError:
            print(response.text[:2000])
    return 0 if response.status_code < 400 else 1
