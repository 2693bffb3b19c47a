"""``python -m simulators.controller scenario NAME``: run a named scenario against the connector."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from simulators.controller.scenarios import SCENARIOS, ScenarioRun
from simulators.controller.signing import ControllerSigner

# The controller name the local stack's outbound proxy routes to the simulator (simulators/devstack/).
DEFAULT_CONTROLLER_URI = "https://controller.example.net:6308/"


def configure(parser: argparse.ArgumentParser) -> None:
    listing = "; ".join(f"{name}: {help_text}" for name, (_, help_text) in SCENARIOS.items())
    parser.add_argument("name", choices=sorted(SCENARIOS), help=listing)
    parser.add_argument(
        "--controller-uri",
        help="APS-Controller-URI to send: the simulated controller's public URL "
        f"(default: the one kept in --state, else {DEFAULT_CONTROLLER_URI})",
    )
    parser.add_argument("--state", default="var/controller_sim_state.json", help="ids kept between runs")
    parser.add_argument("--poll-cap", type=float, default=5.0, help="max seconds between async polls")


def run(args: argparse.Namespace, signer: ControllerSigner) -> int:
    state_path = Path(args.state)
    state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.exists() else {}
    controller_uri = args.controller_uri or state.get("controller_uri") or DEFAULT_CONTROLLER_URI
    state["controller_uri"] = controller_uri
    scenario = ScenarioRun(signer, controller_uri, state, out=sys.stdout, poll_cap=args.poll_cap)
    try:
        SCENARIOS[args.name][0](scenario)
    except KeyError as e:
        print(f"controller simulator: run the scenario that creates {e} first", file=sys.stderr)
        return 2
    finally:
        state_path.parent.mkdir(parents=True, exist_ok=True)
        state_path.write_text(json.dumps(state, indent=2) + "\n")
    failed = [r for r in scenario.results if not r.ok]
    print(f"{args.name}: {len(scenario.results) - len(failed)}/{len(scenario.results)} steps as expected")
    return 1 if failed else 0
