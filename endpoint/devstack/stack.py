"""The local stack: demo data, the endpoint behind an inbound and an outbound mitmproxy, the simulators
and the outbox worker; prints every URL and a ready-to-run call; Ctrl-C stops everything.

Everything lives under one data directory (default var/local): the config written for the run, the
database, the filled instance document, the demo admin's password (0600), mitmproxy's CA, and the logs
(each process's, plus the audit logs). Children are started the way an operator would start them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from typing import TextIO

from endpoint.devstack import components, gateway
from endpoint.devstack.components import child_env
from endpoint.devstack.layout import (
    ACRONIS_DC,
    CONTROLLER_URI,
    DEMO_TENANT,
    REPO,
    StackFiles,
    StackOptions,
    admin_password,
    gateway_partner_password,
    shown,
    write_config,
)
from endpoint.devstack.supervisor import StackError, Supervisor, require_free_ports


class LocalStack:
    """The stack's processes under one supervisor; drills and tests restart single components."""

    def __init__(self, options: StackOptions, faults: tuple[str, ...] = ()) -> None:
        self.options = options
        self.files = StackFiles(
            options.data_dir if options.data_dir.is_absolute() else REPO / options.data_dir
        )
        self.faults = faults
        self.supervisor = Supervisor(self.files.logs)

    def up(self) -> None:
        """Bootstrap and start everything. :raise StackError: a port is taken or a component fails."""
        options, files = self.options, self.files
        files.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        files.logs.mkdir(exist_ok=True)
        require_free_ports(options.ports())
        write_config(options, files)
        _run_once(
            "bootstrap",
            _bootstrap_argv(options, files),
            files,
            {"CONNECTOR_ADMIN_PASSWORD": admin_password(files)},
        )
        if options.jwt:
            _run_once(
                "gateway-partner",
                [sys.executable, "-m", "endpoint.devstack.gateway", "--config", str(files.config)],
                files,
                {gateway.PASSWORD_ENV: gateway_partner_password(files)},
            )
        if not options.proxies:
            self.start(components.endpoint(options, files))
            return
        # Simulators first, then the outbound proxy (it writes the CA), the inbound proxy, the services.
        components.require_mitmdump()
        self.start(components.acronis_simulator(options, files))
        self.start(components.controller_simulator(options, files))
        self.start(components.outbound_proxy(options, files, self.faults))
        components.wait_for_ca(files)
        self.start(components.inbound_proxy(options, files))
        self.start(components.endpoint(options, files))
        if options.demo_items:
            self.queue_demo_items(options.demo_items, options.seed)
        self.start(components.worker(options, files))

    def start(self, component: components.Component) -> None:
        self.supervisor.start(
            component.name,
            component.argv,
            env=child_env(component.env),
            cwd=REPO,
            ready_port=component.ready_port,
        )

    def stop(self, name: str) -> None:
        self.supervisor.stop(name)

    def restart_outbound_proxy(self, faults: tuple[str, ...] = ()) -> None:
        """A drill: the forward proxy goes away and comes back (optionally with other faults)."""
        self.stop("outbound-proxy")
        self.start(components.outbound_proxy(self.options, self.files, faults))

    def queue_demo_items(self, count: int, seed: int) -> None:
        _run_once(
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

    def down(self) -> None:
        self.supervisor.stop_all()


def run_stack(
    options: StackOptions,
    out: TextIO = sys.stdout,
    stop: threading.Event | None = None,
    faults: tuple[str, ...] = (),
) -> int:
    stack = LocalStack(options, faults)
    stop = stop or _signal_event()
    try:
        stack.up()
        print_summary(options, stack.files, out)
        return _wait(stack.supervisor, stop, out)
    except StackError as e:
        print(f"stack: {e}", file=sys.stderr)
        return 2
    finally:
        stack.down()


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


def _run_once(name: str, argv: list[str], files: StackFiles, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(argv, cwd=REPO, env=child_env(env), capture_output=True, text=True, timeout=120)
    (files.logs / f"{name}.log").write_text(result.stdout + result.stderr, encoding="utf-8")
    if result.returncode != 0:
        raise StackError(f"{name} failed: {(result.stderr or result.stdout).strip()[-500:]}")


def print_summary(options: StackOptions, files: StackFiles, out: TextIO) -> None:
    controller = f".venv/bin/python -m simulators.controller --instance {shown(files.instance)}" + (
        f" --ca-bundle {shown(files.ca_cert)}" if options.proxies else ""
    )
    call = (
        f"{controller} callback vendor.app.users_read.v1.0 --tenant {DEMO_TENANT} "
        f"--login {options.admin_login} --password-file {shown(files.admin_password)}"
    )
    lines = [f"\nLocal connector stack is up (data in {shown(files.root)}, SQLite, demo data loaded)."]
    rows: list[tuple[str, str]] = []
    if options.proxies:
        local = f"http://{options.host}"
        rows += [
            ("public URL (inbound proxy, TLS)", f"{options.public_url} -> {local}:{options.endpoint_port}/"),
            ("outbound proxy (audit, allowlist)", f"{local}:{options.outbound_port}"),
            ("Acronis API simulator", f"{local}:{options.acronis_port} (stands in for {ACRONIS_DC})"),
            ("controller simulator", f"{local}:{options.controller_port} (stands in for {CONTROLLER_URI})"),
            ("outbox worker", f"running ({options.demo_items} demo items queued)"),
            *(gateway.summary_rows(options, files) if options.jwt else []),
            ("audit log, outbound", shown(files.audit_log)),
            ("audit log, inbound", shown(files.logs / "inbound-audit.jsonl")),
            ("mitmproxy CA (trust it)", shown(files.ca_cert)),
        ]
    else:
        rows.append(("endpoint URL (public_base_url)", options.public_url))
    rows += [
        ("instance document (0600)", shown(files.instance)),
        ("demo admin", f"{options.admin_login} (password in {shown(files.admin_password)})"),
        ("process logs", f"{shown(files.logs)}/"),
    ]
    lines += [f"  {label + ':':<35}{value}" for label, value in rows]
    lines.append("")
    if options.gateway != "jwt":  # with the gateway's JWT only, /callback refuses OAuth 1.0 signatures
        lines += [
            "A signed callback, as the controller sends it"
            + (" (through the inbound proxy):" if options.proxies else ":"),
            f"  {call}",
        ]
    if options.jwt:
        lines += gateway.summary_lines(options, files)
    if options.proxies:
        lines += [
            "The whole APS lifecycle through both proxies (the connector calls the controller back):",
            f"  {controller} scenario lifecycle",
        ]
    lines += ["", "Press Ctrl-C to stop."]
    print("\n".join(lines), file=out, flush=True)


def _signal_event() -> threading.Event:
    event = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: event.set())
    return event


def _wait(supervisor: Supervisor, stop: threading.Event, out: TextIO) -> int:
    while not stop.wait(0.5):
        crashed = supervisor.first_exited()
        if crashed is not None:
            print(
                f"stack: {crashed.name} exited ({crashed.process.returncode}); see {crashed.log_path}",
                file=sys.stderr,
            )
            return 1
    print("stopping...", file=out, flush=True)
    return 0  # run_stack's finally clause stops the children
