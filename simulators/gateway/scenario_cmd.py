"""``python -m simulators.gateway scenario NAME``: run a named scenario against the callback URL."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from simulators.gateway.run import GatewayRun, Sender
from simulators.gateway.scenarios import SCENARIOS


def configure(parser: argparse.ArgumentParser) -> None:
    listing = "; ".join(f"{name}: {help_text}" for name, (_, help_text) in SCENARIOS.items())
    parser.add_argument("name", choices=sorted(SCENARIOS), help=listing)
    parser.add_argument("--state", default="var/gateway_sim_state.json", help="tenant ids kept between runs")


def run(args: argparse.Namespace, sender: Sender, cyberapp_auth: str | None) -> int:
    state_path = Path(args.state)
    state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.exists() else {}
    scenario = GatewayRun(
        sender,
        state,
        cyberapp_auth,
        app_code=args.app_code,
        datacenter_url=args.datacenter,
        out=sys.stdout,
    )
    try:
        SCENARIOS[args.name][0](scenario)
    finally:
        state_path.parent.mkdir(parents=True, exist_ok=True)
        state_path.write_text(json.dumps(state, indent=2) + "\n")
    failed = [r for r in scenario.results if not r.ok]
    print(f"{args.name}: {len(scenario.results) - len(failed)}/{len(scenario.results)} steps as expected")
    return 1 if failed else 0
