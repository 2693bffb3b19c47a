"""The stack's live view: one compact line per inbound request, outbound flow and stack event.

After the banner the stack follows what its processes write and prints, like ``docker compose up``:

    16:49:16 inbound  | POST /tenants -> 202 25ms  APS-Retry-Timeout: 2
    16:49:18 outbound | GET controller.example.net:6308/aps/2/resources/a0000000-... -> 200 1504ms stand-in
    16:49:18 worker   | outbox 00000000: sent 20, remaining 0, dead 0
    16:49:20 stack    | outbound-proxy exited (status -9); restart it: connector stack restart outbound-proxy

Sources, all under the data directory's logs/: the inbound and outbound audit logs of the two mitmproxy
processes (one JSON line per flow), and the endpoint's and the worker's logs (access lines when there is no
inbound proxy, progress lines, warnings and errors). Only lines written after the stack started are shown.
Colour only on a terminal (and never with NO_COLOR set).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from simulators.devstack.layout import StackFiles

RESET, BOLD, DIM = "\033[0m", "\033[1m", "\033[2m"
RED, GREEN, YELLOW, BLUE, MAGENTA, CYAN = (f"\033[{n}m" for n in (31, 32, 33, 34, 35, 36))
SOURCE_COLOURS = {"inbound": CYAN, "outbound": MAGENTA, "endpoint": BLUE, "worker": GREEN, "stack": BOLD}
WIDTH = max(len(name) for name in SOURCE_COLOURS)
_LOG_LINE = re.compile(r"(?P<ts>\S+) (?P<level>[A-Z]+) (?P<logger>[\w.]+): (?P<msg>.*)")
_FIELD = re.compile(r" (?=[a-z_]+=)")
MAX_PATH = 72


class Follower:
    """New complete lines of one file, from the offset it had when the follower was made."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self.partial = b""

    def lines(self) -> list[str]:
        try:
            with self.path.open("rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < self.offset:  # truncated or replaced: start over
                    self.offset, self.partial = 0, b""
                fh.seek(self.offset)
                data = fh.read(1 << 20)
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self.partial + data
        *complete, self.partial = data.split(b"\n")
        return [line.decode("utf-8", "replace") for line in complete if line.strip()]


class Painter:
    """ANSI colours, or none at all."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, colour: str, text: str) -> str:
        return f"{colour}{text}{RESET}" if self.enabled and colour else text

    def status(self, status: Any) -> str:
        if not isinstance(status, int):
            return self(RED, "--")
        colour = GREEN if status < 300 else CYAN if status < 400 else YELLOW if status < 500 else RED
        return self(colour, str(status))


def colour_wanted(out: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    if "NO_COLOR" in environ or environ.get("TERM") == "dumb":
        return False
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


class LiveView:
    """Follows the stack's files and prints one line per event; ``poll()`` from the supervisor's loop."""

    def __init__(self, files: StackFiles, out: TextIO, *, proxies: bool, colour: bool | None = None) -> None:
        self.out = out
        self.paint = Painter(colour_wanted(out) if colour is None else colour)
        self.proxies = proxies
        self.sources: list[tuple[Follower, Callable[[str], Iterator[tuple[str, Any, str]]]]] = [
            (Follower(files.logs / "endpoint.log"), self._endpoint),
            (Follower(files.logs / "outbox-worker.log"), self._worker),
        ]
        if proxies:
            self.sources[:0] = [
                (Follower(files.inbound_audit_log), self._inbound),
                (Follower(files.audit_log), self._outbound),
            ]
        self.broken = False

    # -- output --------------------------------------------------------------------------------------
    def emit(self, source: str, text: str, ts: str | None = None) -> None:
        """One line; an output that went away (a closed terminal) silences the view, never the stack."""
        if self.broken:
            return
        clock = ts or time.strftime("%H:%M:%S")
        name = self.paint(SOURCE_COLOURS.get(source, ""), f"{source:<{WIDTH}}")
        try:
            self.out.write(f"{self.paint(DIM, clock)} {name} | {text}\n")
            self.out.flush()
        except (OSError, ValueError):
            self.broken = True

    def event(self, text: str, *, bad: bool = False) -> None:
        self.emit("stack", self.paint(RED, text) if bad else text)

    def poll(self) -> int:
        """Print what was written since the last poll, in time order; returns the number of lines."""
        batch = [
            event for follower, parse in self.sources for raw in follower.lines() for event in parse(raw)
        ]
        batch.sort(key=lambda event: _sortable(event[1]))  # stable: a file's own order is kept
        for source, ts, text in batch:
            self.emit(source, text, _clock(ts))
        return len(batch)

    # -- sources -------------------------------------------------------------------------------------
    def _inbound(self, raw: str) -> Iterator[tuple[str, Any, str]]:
        line = _json(raw)
        if line is None or line.get("method") == "CONNECT":
            return
        req_headers = _lower(line.get("req_headers"))
        resp_headers = _lower(line.get("resp_headers"))
        text = f"{line.get('method')} {_short(line.get('path') or '')} -> {self._flow_status(line)}"
        if req_headers.get("aps-request-phase") == "async":
            text += self.paint(DIM, "  (async poll)")
        if "aps-retry-timeout" in resp_headers:
            text += self.paint(YELLOW, f"  APS-Retry-Timeout: {resp_headers['aps-retry-timeout']}")
        if line.get("answered_by") == "proxy":
            text += self.paint(RED, f"  proxy: {line.get('error') or 'endpoint unreachable'}")
        yield "inbound", line.get("ts"), text

    def _outbound(self, raw: str) -> Iterator[tuple[str, Any, str]]:
        line = _json(raw)
        if line is None:
            return
        answered = line.get("answered_by") or "upstream"
        connect = line.get("method") == "CONNECT"
        if connect and line.get("status") == 200 and not line.get("error"):
            return  # a tunnel opened: its requests follow as lines of their own
        port = line.get("port")
        default = {"https": 443, "http": 80}.get(line.get("scheme") or "", None)
        where = f"{line.get('host')}" + (f":{port}" if port and port != default else "")
        text = f"{line.get('method')} {where}{_short(line.get('path') or '')} -> {self._flow_status(line)}"
        if answered == "fault":
            text += self.paint(RED, f"  fault {', '.join(line.get('fault') or [])}")
        elif answered in ("blocked", "proxy"):
            text += self.paint(RED, f"  {answered}" + (f": {line['error']}" if line.get("error") else ""))
        elif answered != "stand-in":
            text += f"  {answered}"
        yield "outbound", line.get("ts"), text

    def _flow_status(self, line: Mapping[str, Any]) -> str:
        ms = line.get("ms")
        timing = f" {ms:.0f}ms" if isinstance(ms, int | float) else ""
        return self.paint.status(line.get("status")) + self.paint(DIM, timing)

    def _endpoint(self, raw: str) -> Iterator[tuple[str, Any, str]]:
        match = _LOG_LINE.fullmatch(raw)
        if match is None:
            return
        if match["logger"] == "endpoint.access":
            if self.proxies:
                return  # the inbound proxy's line says it (and also what never reached the endpoint)
            fields = _fields(match["msg"])
            text = f"{fields.get('method')} {_short(fields.get('path', ''))} -> "
            status = int(fields["status"]) if fields.get("status", "").isdigit() else None
            text += self.paint.status(status) + self.paint(DIM, f" {fields.get('ms', '?')}ms")
            for key in ("callback", "reason"):
                if fields.get(key):
                    text += f"  {key}={fields[key]}"
            yield "inbound", match["ts"], text
        elif match["level"] in ("WARNING", "ERROR", "CRITICAL"):
            yield "endpoint", match["ts"], self._level(match["level"], match["msg"])

    def _worker(self, raw: str) -> Iterator[tuple[str, Any, str]]:
        match = _LOG_LINE.fullmatch(raw)
        if match is None:
            return
        if match["logger"] == "endpoint.outbox.progress":
            fields = _fields(match["msg"])
            tenant = fields.get("tenant", "?")[:8]
            counts = ", ".join(
                f"{k} {fields[k]}" for k in ("sent", "remaining", "failed", "dead") if k in fields
            )
            yield "worker", match["ts"], f"outbox {tenant}: {counts}"
        elif match["level"] in ("WARNING", "ERROR", "CRITICAL"):
            yield "worker", match["ts"], self._level(match["level"], match["msg"])

    def _level(self, level: str, message: str) -> str:
        return self.paint(YELLOW if level == "WARNING" else RED, f"{level} {_short(message, 160)}")


def _json(raw: str) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _lower(headers: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {}


def _fields(message: str) -> dict[str, str]:
    """``request method=POST path=/app status=201 ...``: the key=value fields of a text log line."""
    fields: dict[str, str] = {}
    for part in _FIELD.split(message)[1:]:
        key, _, value = part.partition("=")
        fields[key] = value
    return fields


def _sortable(ts: Any) -> str:
    """Audit lines say ``...T16:54:09.123+00:00``, logs ``...T16:54:09.123Z``: both UTC, same prefix."""
    return ts[:23] if isinstance(ts, str) else "~"


def _clock(ts: Any) -> str:
    """HH:MM:SS in local time from an RFC 3339 UTC stamp (audit lines and logs both write one)."""
    if not isinstance(ts, str):
        return time.strftime("%H:%M:%S")
    try:
        moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return time.strftime("%H:%M:%S")
    return moment.astimezone().strftime("%H:%M:%S")


def _short(text: str, limit: int = MAX_PATH) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
