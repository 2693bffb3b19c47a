"""AuditLog: one redacted JSON line per flow, and an egress allowlist answered by the proxy itself."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO, Any

from mitmproxy import addonmanager, ctx, exceptions, http
from specs import (
    META_ANSWERED_BY,
    META_FAULT,
    META_STANDIN,
    HostPattern,
    Redactor,
    make_redactor,
    origin_of,
    parse_allow,
)

log = logging.getLogger(__name__)
_AUDITED = "rig.audited"


def _open_private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


class AuditLog:
    """Write every flow as one JSON line; block (403) and log requests to hosts outside audit_allow."""

    def __init__(self) -> None:
        self.allow: list[HostPattern] = []
        self.redactor: Redactor = make_redactor()
        self.bodies = False
        self.file: IO[str] | None = None

    def load(self, loader: addonmanager.Loader) -> None:
        loader.add_option(
            "audit_log",
            str | None,
            None,
            "Append one JSON line per flow to this file (created 0600). Unset: lines go to the event log.",
        )
        loader.add_option(
            "audit_allow",
            Sequence[str],
            [],
            """
            Allowed destination "HOSTGLOB[:PORT]" (e.g. "acronis.example.com:443", "*.example.com");
            repeat for more. When any is set, requests and CONNECTs elsewhere get a 403 from the proxy
            and are logged as blocked. Empty: everything is allowed.
            """,
        )
        loader.add_option(
            "audit_redact",
            Sequence[str],
            [],
            "Extra secret key names or globs (headers, query, JSON and form keys) whose values are redacted, "
            "on top of the built-in ones (*token*, *secret*, *password*, authorization, cookie, ...).",
        )
        loader.add_option(
            "audit_bodies",
            bool,
            False,
            "Also log JSON and form bodies (secrets redacted, 4 KiB max); others by size and type only.",
        )

    def configure(self, updated: set[str]) -> None:
        if "audit_allow" in updated:
            try:
                self.allow = [parse_allow(entry) for entry in ctx.options.audit_allow]
            except ValueError as e:
                raise exceptions.OptionsError(f"audit_allow: {e}") from e
        if "audit_redact" in updated:
            try:
                self.redactor = make_redactor(ctx.options.audit_redact)
            except ValueError as e:
                raise exceptions.OptionsError(f"audit_redact: {e}") from e
        if "audit_bodies" in updated:
            self.bodies = ctx.options.audit_bodies
        if "audit_log" in updated:
            self.done()
            if ctx.options.audit_log:
                try:
                    self.file = open(ctx.options.audit_log, "a", encoding="utf-8", opener=_open_private)
                except OSError as e:
                    raise exceptions.OptionsError(f"audit_log: cannot open it: {e}") from e

    def done(self) -> None:
        if self.file:
            self.file.close()
            self.file = None

    def allowed(self, host: str, port: int) -> bool:
        return not self.allow or any(p.matches(host, port) for p in self.allow)

    def _block(self, flow: http.HTTPFlow, host: str, port: int) -> None:
        flow.metadata[META_ANSWERED_BY] = "blocked"
        body = {
            "error": "egress_blocked",
            "message": "destination is not in the proxy allowlist",
            "host": host,
            "port": port,
        }
        flow.response = http.Response.make(403, json.dumps(body), {"Content-Type": "application/json"})
        log.warning("blocked %s %s:%d (not in audit_allow)", flow.request.method, host, port)

    @staticmethod
    def _answered_by_mitmproxy(flow: http.HTTPFlow) -> bool:
        """A response before any rig addon acted is mitmproxy's own (built-in addons run first), e.g. the
        407 of ``proxyauth``: audited as ``proxy``, never as the stand-in or upstream it never reached."""
        if flow.response is None or META_ANSWERED_BY in flow.metadata:
            return False
        flow.metadata[META_ANSWERED_BY] = "proxy"
        return True

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if self._answered_by_mitmproxy(flow):
            return
        # Checked here as well: for https the CONNECT is the only place the destination is visible before
        # bytes flow, and a blocked tunnel means mitmproxy never opens a connection to that host.
        if not self.allowed(flow.request.host, flow.request.port):
            self._block(flow, flow.request.host, flow.request.port)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        # requestheaders runs before every addon's request hook: no stand-in or fault acts on a blocked flow.
        if self._answered_by_mitmproxy(flow) or flow.response:
            return
        req = flow.request
        origin = origin_of(flow.metadata, req.scheme, req.host, req.port)
        if not self.allowed(origin.host, origin.port):
            self._block(flow, origin.host, origin.port)

    def http_connected(self, flow: http.HTTPFlow) -> None:
        self._write(flow)

    def http_connect_error(self, flow: http.HTTPFlow) -> None:
        self._write(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self._write(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._write(flow)

    def record(self, flow: http.HTTPFlow) -> dict[str, Any]:
        """The audit line for a flow, with every secret already redacted."""
        req, resp, err = flow.request, flow.response, flow.error
        origin = origin_of(flow.metadata, req.scheme, req.host, req.port)
        connect = req.method == "CONNECT"
        end = resp.timestamp_end if resp and resp.timestamp_end else err.timestamp if err else time.time()
        answered_by = flow.metadata.get(META_ANSWERED_BY)
        if answered_by not in ("blocked", "fault") and err and not resp:
            answered_by = "proxy"  # mitmproxy gave up (e.g. upstream unreachable) and answered itself
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(req.timestamp_start, UTC).isoformat(timespec="milliseconds"),
            "id": flow.id,
            "client": flow.client_conn.peername[0] if flow.client_conn.peername else None,
            "mode": flow.client_conn.proxy_mode.type_name,
            "method": req.method,
            "scheme": origin.scheme or None,  # a CONNECT has none: it opens a tunnel
            "host": origin.host,
            "port": origin.port,
            "path": "" if connect else self.redactor.path(req.path),
            "status": resp.status_code if resp else None,
            "req_bytes": len(req.raw_content or b""),
            "resp_bytes": len(resp.raw_content or b"") if resp else 0,
            "ms": round((end - req.timestamp_start) * 1000, 1),
            "answered_by": answered_by or "upstream",
            "standin": flow.metadata.get(META_STANDIN),
            "fault": flow.metadata.get(META_FAULT),
            "error": err.msg if err else None,
            "req_headers": self.redactor.headers(req.headers.items(multi=True)),
            "resp_headers": self.redactor.headers(resp.headers.items(multi=True)) if resp else None,
        }
        if self.bodies and not connect:
            line["req_body"] = self._body(req)
            line["resp_body"] = self._body(resp) if resp else None
        return line

    def _body(self, message: http.Message) -> str | None:
        content = message.get_content(strict=False)
        if not content:
            return None
        return self.redactor.body(content, message.headers.get("Content-Type", ""))

    def _write(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(_AUDITED):
            return  # e.g. an error after the response was already logged
        flow.metadata[_AUDITED] = True
        line = json.dumps(self.record(flow), ensure_ascii=False, separators=(",", ":"))
        if self.file:
            self.file.write(line + "\n")
            self.file.flush()
        else:
            log.info("audit %s", line)


addons = [AuditLog()]
