"""The local stack's banner: every URL, port and file, the active drills and ready-to-run commands, and
``say``, which prints unless the terminal is gone."""

from __future__ import annotations

from typing import TextIO

from simulators.devstack import components, gateway
from simulators.devstack.layout import (
    ACRONIS_DC,
    CONTROLLER_URI,
    DEMO_TENANT,
    REPO,
    StackFiles,
    StackOptions,
    shown,
)


def print_summary(
    options: StackOptions,
    files: StackFiles,
    out: TextIO,
    *,
    faults: tuple[str, ...] = (),
    demo: tuple[int | None, int] = (None, 0),
) -> None:
    """The banner: every URL, port and file, the active drills, and ready-to-run commands."""
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
        ]
        if options.web:
            token = components.mitmweb_asks_for_a_token()
            rows += [
                (
                    f"{side} flows (mitmweb)",
                    f"{local}:{port}/" + (f" (login token: in {log})" if token else ""),
                )
                for side, port, log in (
                    ("inbound", options.inbound_web_port, shown(files.logs / "inbound-proxy.log")),
                    ("outbound", options.outbound_web_port, shown(files.logs / "outbound-proxy.log")),
                )
            ]
        rows += [
            ("fault drills (outbound proxy)", "; ".join(faults) if faults else "none"),
            ("Acronis API simulator", f"{local}:{options.acronis_port} (stands in for {ACRONIS_DC})"),
            ("controller simulator", f"{local}:{options.controller_port} (stands in for {CONTROLLER_URI})"),
            ("outbox worker", f"running ({_demo_text(*demo)})"),
            *(gateway.summary_rows(options, files) if options.jwt else []),
            ("audit log, outbound", shown(files.audit_log)),
            ("audit log, inbound", shown(files.inbound_audit_log)),
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
            "The whole APS lifecycle through both proxies (the connector calls the controller back; one",
            "provisioning waits for the controller and answers 202 + APS-Retry-Timeout, then is polled):",
            f"  {controller} scenario lifecycle --state {shown(files.controller_state)}",
        ]
    data_dir = "" if files.root == REPO / StackOptions().data_dir else f" --data-dir {shown(files.root)}"
    lines += [
        "The stack from another terminal (a drill: stop the outbound proxy, watch items wait, restart it):",
        f"  .venv/bin/connector stack status{data_dir}",
        f"  .venv/bin/connector stack stop outbound-proxy{data_dir}"
        f"   /   .venv/bin/connector stack restart outbound-proxy{data_dir}",
    ]
    lines += ["", "Press Ctrl-C to stop. Live view (one line per request and flow):"]
    say("\n".join(lines), out)


def _demo_text(queued: int | None, run: int) -> str:
    if queued is None:
        return "no demo items asked for"
    if queued == 0:
        return "no demo items queued: no tenant is mapped to the data center"
    return f"{queued} fresh demo items queued for run {run}"


def say(text: str, out: TextIO) -> None:
    """Print, unless the output is gone (SIGHUP closed the terminal): stopping cleanly matters more."""
    try:
        print(text, file=out, flush=True)
    except (OSError, ValueError):
        pass
