"""``connector stack``: bring the local stack up with demo data, or act on the one already running.

    connector stack [up] [flags]                 run it in the foreground (Ctrl-C, SIGTERM, SIGHUP stop it)
    connector stack status                       its components: running, stopped or exited, pid, port
    connector stack stop                         stop the whole stack (from another terminal)
    connector stack stop COMPONENT               stop one component; the others keep running
    connector stack restart COMPONENT [--fault SPEC ...]   (also: start) bring one back, e.g. outbound-proxy

Components: endpoint, inbound-proxy, outbound-proxy, acronis-simulator, controller-simulator, outbox-worker.
The running stack is found through --data-dir (its PID file and control socket live there).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from endpoint.config.settings import Settings
from simulators.devstack import control
from simulators.devstack.layout import CALLBACK_AUTH, REPO
from simulators.devstack.stack import StackOptions, run_stack

ACTIONS = ("up", "status", "stop", "restart", "start")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    defaults = StackOptions()
    parser.add_argument(
        "action",
        nargs="?",
        choices=ACTIONS,
        default="up",
        help="up (the default) or an action on a running stack",
    )
    parser.add_argument("component", nargs="?", help="for stop/restart/start: the component's name")
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
        help="alerts/workloads queued for the outbox worker at start (fresh ones on every run)",
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
        "--web",
        action="store_true",
        help="run mitmweb instead of mitmdump for both proxies: a flow browser each "
        "(--inbound-web-port, --outbound-web-port)",
    )
    parser.add_argument("--inbound-web-port", type=int, default=defaults.inbound_web_port)
    parser.add_argument("--outbound-web-port", type=int, default=defaults.outbound_web_port)
    parser.add_argument(
        "--fault",
        action="append",
        default=None,
        metavar="SPEC",
        help="a fault drill for the outbound proxy, e.g. '503@eu8-cloud.acronis.com?rate=0.3' "
        "(see proxy/mitm/README.md); with `restart outbound-proxy` it replaces the running drills "
        "(--fault '' for none)",
    )
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the live view (auto: only on a terminal, and not with NO_COLOR set)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """The stack writes its own config; only the flags above (and --host) apply."""
    if args.action != "up":
        return act(args)
    if args.component:
        print(
            f"stack: unexpected {args.component!r} (did you mean `stack restart {args.component}`?)",
            file=sys.stderr,
        )
        return 2
    try:
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
            web=args.web,
            inbound_web_port=args.inbound_web_port,
            outbound_web_port=args.outbound_web_port,
        )
    except ValueError as e:
        print(f"stack: {e}", file=sys.stderr)
        return 2
    colour = {"auto": None, "always": True, "never": False}[args.color]
    return run_stack(options, faults=tuple(args.fault or ()), colour=colour)


def act(args: argparse.Namespace, out: Any = None) -> int:
    """status / stop / restart / start on the stack running from --data-dir."""
    out = out or sys.stdout
    root = args.data_dir if args.data_dir.is_absolute() else REPO / args.data_dir
    if args.action in ("restart", "start") and not args.component:
        print(
            f"stack {args.action}: name the component, e.g. `stack {args.action} outbound-proxy`",
            file=sys.stderr,
        )
        return 2
    pid = control.running_pid(root)
    if pid is None:
        print(f"stack: no stack is running from {root}", file=out if args.action == "status" else sys.stderr)
        return 3 if args.action == "status" else 1
    request: dict[str, Any] = {}
    if args.component:
        request["component"] = args.component
    if args.fault is not None:  # `--fault ''` alone: no drills at all
        request["faults"] = [spec for spec in args.fault if spec]
    try:
        answer = control.send(root, args.action, **request)
    except control.ControlError as e:
        print(f"stack: {e} (supervisor pid {pid}; is it still starting?)", file=sys.stderr)
        return 1
    if not answer.get("ok"):
        print(f"stack {args.action}: {answer.get('message')}", file=sys.stderr)
        return 1
    if args.action == "status":
        print_status(root, pid, answer, out)
        return 0
    print(answer.get("message"), file=out)
    if args.action == "stop" and not args.component:
        return _wait_gone(root)
    return 0


def print_status(root: Path, pid: int, answer: dict[str, Any], out: Any) -> None:
    print(f"stack running from {root} (supervisor pid {pid})", file=out)
    faults = answer.get("faults") or []
    print(f"fault drills on the outbound proxy: {'; '.join(faults) if faults else 'none'}", file=out)
    print(f"  {'component':<22}{'state':<14}{'pid':>8}  listens", file=out)
    for row in answer.get("components", []):
        state = row["state"] if row["state"] != "exited" else f"exited ({row['status']})"
        print(f"  {row['name']:<22}{state:<14}{row['pid'] or '-':>8}  {row['listens'] or '-'}", file=out)


def _wait_gone(root: Path, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while control.running_pid(root) is not None:
        if time.monotonic() > deadline:
            print(f"stack: still running after {timeout:.0f}s", file=sys.stderr)
            return 1
        time.sleep(0.1)
    print("stack stopped", file=sys.stdout)
    return 0
