"""The local stack: demo data, the endpoint behind an inbound and an outbound mitmproxy, the simulators
and the outbox worker; prints every URL and a ready-to-run call, then a live view of the traffic.

Everything lives under one data directory (default var/local): the config written for the run, the
database, the filled instance document, the demo admin's password (0600), mitmproxy's CA, the logs
(each process's, plus the audit logs), the PID file and the control socket. Children are started the way
an operator would start them. Ctrl-C, SIGTERM and SIGHUP (a closed terminal) stop every child; so does
the supervisor's own death (see supervisor.py). A child that dies is reported and the rest keeps running:
``connector stack restart NAME`` brings it back (control.py).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from simulators.devstack import components, gateway
from simulators.devstack.components import OUTBOUND, child_env
from simulators.devstack.control import ControlError, ControlServer, PidLock
from simulators.devstack.layout import (
    REPO,
    StackFiles,
    StackOptions,
    admin_password,
    gateway_partner_password,
    shown,
    write_config,
)
from simulators.devstack.liveview import LiveView
from simulators.devstack.loop import Loop
from simulators.devstack.summary import print_summary, say
from simulators.devstack.supervisor import StackError, Supervisor, require_free_ports

_QUEUED = re.compile(r"demo: (\d+) item")


class LocalStack:
    """The stack's processes under one supervisor; drills, tests and ``connector stack`` restart single
    components."""

    def __init__(self, options: StackOptions, faults: tuple[str, ...] = ()) -> None:
        self.options = options
        self.files = StackFiles(
            options.data_dir if options.data_dir.is_absolute() else REPO / options.data_dir
        )
        self.faults = faults
        self.supervisor = Supervisor(self.files.logs)
        self.components: dict[str, components.Component] = {}  # what was started, by name, for restarts
        self.lock = PidLock(self.files.root)
        self.demo_queued: int | None = None  # demo items this run really queued (None: none asked for)
        self.demo_run = 0

    def up(self, before_children: Callable[[], None] | None = None) -> None:
        """Bootstrap and start everything. :raise StackError: a stack already runs from this data
        directory, a port is taken, or a component fails."""
        options, files = self.options, self.files
        files.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        files.logs.mkdir(exist_ok=True)
        try:
            self.lock.acquire()
        except ControlError as e:
            raise StackError(
                f"{e}; stop it with: connector stack stop --data-dir {shown(files.root)}"
            ) from None
        require_free_ports(options.ports())
        write_config(options, files)
        if before_children is not None:
            before_children()
        _run_once(
            "bootstrap",
            _bootstrap_argv(options, files),
            files,
            {"CONNECTOR_ADMIN_PASSWORD": admin_password(files)},
        )
        if options.jwt:
            _run_once(
                "gateway-partner",
                [sys.executable, "-m", "simulators.devstack.gateway", "--config", str(files.config)],
                files,
                {gateway.PASSWORD_ENV: gateway_partner_password(files)},
            )
        if not options.proxies:
            self.start(components.endpoint(options, files))
            return
        # Simulators first, then the outbound proxy (it writes the CA), the inbound proxy, the services.
        components.require_mitmdump(options.web)
        self.start(components.acronis_simulator(options, files))
        self.start(components.controller_simulator(options, files))
        self.start(components.outbound_proxy(options, files, self.faults))
        components.wait_for_ca(files)
        self.start(components.inbound_proxy(options, files))
        self.start(components.endpoint(options, files))
        if options.demo_items:
            self.demo_queued = self.queue_fresh_demo_items(options.demo_items)
        self.start(components.worker(options, files))

    def start(self, component: components.Component) -> None:
        self.components[component.name] = component
        self.supervisor.start(
            component.name,
            component.argv,
            env=child_env(component.env),
            cwd=REPO,
            ready_port=component.ready_port,
        )

    def stop(self, name: str) -> None:
        """Stop one component (it stays known: ``restart`` brings it back). :raise StackError: unknown."""
        self._known(name)
        self.supervisor.stop(name)

    def restart(self, name: str, faults: tuple[str, ...] | None = None) -> None:
        """Stop ``name`` if it runs, then start it again; ``faults`` replaces the outbound proxy's drills.

        :raise StackError: an unknown name, faults for another component, or it does not come back.
        """
        component = self._known(name)
        if faults is not None:
            if name != OUTBOUND:
                raise StackError(f"--fault applies to {OUTBOUND} only, not {name}")
            self.faults = faults
            component = components.outbound_proxy(self.options, self.files, faults)
        self.supervisor.stop(name)
        self.start(component)

    def restart_outbound_proxy(self, faults: tuple[str, ...] = ()) -> None:
        """A drill: the forward proxy goes away and comes back (optionally with other faults)."""
        self.restart(OUTBOUND, faults)

    def _known(self, name: str) -> components.Component:
        component = self.components.get(name)
        if component is None:
            raise StackError(f"no component {name!r} (components: {', '.join(self.components)})")
        return component

    def status(self) -> list[dict[str, Any]]:
        """One row per component: name, state (running, stopped, exited), pid, exit status, port, log."""
        rows = []
        for name, component in self.components.items():
            child = self.supervisor.get(name)
            code = child.process.poll() if child is not None else None
            state = "stopped" if child is None else "running" if code is None else "exited"
            port = component.ready_port
            rows.append(
                {
                    "name": name,
                    "state": state,
                    "pid": child.process.pid if child is not None and code is None else None,
                    "status": code,
                    "listens": f"{port[0]}:{port[1]}" if port else None,
                    "log": str(self.files.logs / f"{name}.log"),
                }
            )
        return rows

    def queue_demo_items(self, count: int, seed: int) -> int:
        """Queue ``count`` demo items of ``seed`` (each seed's items once); returns how many were new."""
        output = _run_once(
            "outbox-demo",
            [
                sys.executable,
                "-m",
                "endpoint",
                "outbox",
                "--config",
                str(self.files.config),
                "demo",
                "--count",
                str(count),
                "--seed",
                str(seed),
            ],
            self.files,
        )
        match = _QUEUED.search(output)
        return int(match.group(1)) if match else 0

    def queue_fresh_demo_items(self, count: int) -> int:
        """Demo items no earlier run of this data directory queued, so drills always have traffic."""
        runs = self.files.demo_runs
        previous = int(runs.read_text().strip() or 0) if runs.exists() else 0
        self.demo_run = previous + 1
        runs.write_text(f"{self.demo_run}\n", encoding="utf-8")
        return self.queue_demo_items(count, demo_seed(self.options.seed, self.demo_run))

    def down(self) -> None:
        try:
            self.supervisor.stop_all()
        finally:
            self.lock.release()


def demo_seed(seed: int, run: int) -> int:
    """The seed of a run's demo items: the data seed and the run number, so no two runs share items."""
    return seed * 1_000_000 + run


def run_stack(
    options: StackOptions,
    out: TextIO = sys.stdout,
    stop: threading.Event | None = None,
    faults: tuple[str, ...] = (),
    *,
    colour: bool | None = None,
) -> int:
    stack = LocalStack(options, faults)
    stop = stop or _signal_event()
    control = ControlServer(stack.files.root)
    view: LiveView | None = None

    def follow() -> None:  # before any child writes: the view shows this run's lines, from the start
        nonlocal view
        view = LiveView(stack.files, out, proxies=options.proxies, colour=colour)

    try:
        stack.up(before_children=follow)
        control.start()
        print_summary(
            options, stack.files, out, faults=stack.faults, demo=(stack.demo_queued, stack.demo_run)
        )
        assert view is not None
        return Loop(stack, control, view, stop).run()
    except StackError as e:
        say(f"stack: {e}", sys.stderr)
        return 2
    finally:
        control.close()
        stack.down()
        if view is not None:
            view.poll()


def _bootstrap_argv(options: StackOptions, files: StackFiles) -> list[str]:
    return [
        sys.executable,
        "bootstrap.py",
        "--config",
        str(files.config),
        "--demo",
        "--seed",
        str(options.seed),
        "--admin-login",
        options.admin_login,
        "--instance-json",
        str(files.instance),
    ]


def _run_once(name: str, argv: list[str], files: StackFiles, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(argv, cwd=REPO, env=child_env(env), capture_output=True, text=True, timeout=120)
    (files.logs / f"{name}.log").write_text(result.stdout + result.stderr, encoding="utf-8")
    if result.returncode != 0:
        raise StackError(f"{name} failed: {(result.stderr or result.stdout).strip()[-500:]}")
    return result.stdout


def _signal_event() -> threading.Event:
    """Ctrl-C, SIGTERM and SIGHUP (the terminal closed, an SSH session dropped) all stop the stack."""
    event = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: event.set())
    return event
