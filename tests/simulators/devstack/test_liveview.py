"""The stack's live view: one compact line per inbound request, outbound flow and stack event."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from simulators.devstack.layout import StackFiles
from simulators.devstack.liveview import LiveView, colour_wanted


def audit(ts: str, method: str, host: str, path: str, status: int | None, **extra: Any) -> str:
    line = {
        "ts": f"2026-12-05T16:49:{ts}+00:00",
        "method": method,
        "scheme": None if method == "CONNECT" else "https",
        "host": host,
        "port": 443,
        "path": path,
        "status": status,
        "ms": 3.4,
        "answered_by": "stand-in",
        "fault": None,
        "error": None,
        "req_headers": {},
        "resp_headers": {},
    }
    line.update(extra)
    return json.dumps(line) + "\n"


def append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)


@pytest.fixture
def files(tmp_path: Path) -> StackFiles:
    files = StackFiles(tmp_path)
    files.logs.mkdir()
    append(files.audit_log, audit("00.000", "GET", "old.example", "/before-the-start", 200))
    return files


def view_lines(view: LiveView, out: io.StringIO) -> list[str]:
    view.poll()
    return [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]  # without the local clock


def test_one_line_per_request_and_flow_in_time_order(files: StackFiles) -> None:
    out = io.StringIO()
    view = LiveView(files, out, proxies=True, colour=False)
    append(
        files.inbound_audit_log,
        audit(
            "16.300",
            "POST",
            "127.0.0.1",
            "/tenants",
            202,
            answered_by="upstream",
            resp_headers={"APS-Retry-Timeout": "2", "APS-Info": "In progress"},
        )
        + audit(
            "18.000",
            "POST",
            "127.0.0.1",
            "/tenants",
            201,
            answered_by="upstream",
            req_headers={"APS-Request-Phase": "async"},
        )
        + audit("19.000", "GET", "127.0.0.1", "/app", None, answered_by="proxy", error="connect refused"),
    )
    append(
        files.audit_log,
        audit("16.100", "CONNECT", "controller.example.net", "", 200, port=6308)  # a tunnel: not shown
        + audit("16.200", "GET", "controller.example.net", "/aps/2/resources/a0", 200, port=6308)
        + audit(
            "17.000", "POST", "eu8-cloud.acronis.com", "/api/x", 503, answered_by="fault", fault=["503@*"]
        )
        + audit("17.500", "CONNECT", "evil.example.org", "", 403, answered_by="blocked")
        + '{"ts": "partial line, still being written',
    )
    append(
        files.logs / "outbox-worker.log",
        "2026-12-05T16:49:17.100Z INFO endpoint.outbox.progress: outbox tenant=00000000-0000 remaining=0 "
        "sent=20 failed=0 dead=0\n"
        "2026-12-05T16:49:17.200Z INFO proxy.session: an info line stays out of the view\n"
        "2026-12-05T16:49:17.300Z WARNING endpoint.outbox.worker: delivery paused: proxy refused\n",
    )
    assert view_lines(view, out) == [
        "outbound | GET controller.example.net:6308/aps/2/resources/a0 -> 200 3ms",
        "inbound  | POST /tenants -> 202 3ms  APS-Retry-Timeout: 2",
        "outbound | POST eu8-cloud.acronis.com/api/x -> 503 3ms  fault 503@*",
        "worker   | outbox 00000000: sent 20, remaining 0, failed 0, dead 0",
        "worker   | WARNING delivery paused: proxy refused",
        "outbound | CONNECT evil.example.org:443 -> 403 3ms  blocked",
        "inbound  | POST /tenants -> 201 3ms  (async poll)",
        "inbound  | GET /app -> -- 3ms  proxy: connect refused",
    ]
    assert "old.example" not in out.getvalue()  # only what was written after the stack started
    append(files.audit_log, ' "rest"}\n' + audit("20.000", "GET", "eu8-cloud.acronis.com", "/next", 200))
    assert view_lines(view, out)[-1] == "outbound | GET eu8-cloud.acronis.com/next -> 200 3ms"


def test_without_proxies_the_endpoints_access_lines_are_the_inbound_view(files: StackFiles) -> None:
    out = io.StringIO()
    view = LiveView(files, out, proxies=False, colour=False)
    append(
        files.logs / "endpoint.log",
        "2026-12-05T16:49:16.268Z INFO endpoint.access: request method=POST path=/callback status=401 "
        "ms=1.5 correlation=5a00 client=127.0.0.1 callback=vendor.app.users_read.v1.0 "
        "reason=signature mismatch\n"
        "2026-12-05T16:49:16.300Z INFO endpoint.aps.runner: job runner started\n"
        "2026-12-05T16:49:16.400Z ERROR endpoint.web.server: something broke\n",
    )
    assert view_lines(view, out) == [
        "inbound  | POST /callback -> 401 1.5ms  callback=vendor.app.users_read.v1.0"
        "  reason=signature mismatch",
        "endpoint | ERROR something broke",
    ]


def test_colour_only_when_wanted(files: StackFiles) -> None:
    plain, coloured = io.StringIO(), io.StringIO()
    for out, colour in ((plain, False), (coloured, True)):
        view = LiveView(files, out, proxies=True, colour=colour)
        view.event("outbound-proxy exited (status -9)", bad=True)
    assert "\033[" not in plain.getvalue() and "\033[31m" in coloured.getvalue()

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert colour_wanted(Tty(), {}) and not colour_wanted(io.StringIO(), {})
    assert not colour_wanted(Tty(), {"NO_COLOR": "1"}) and not colour_wanted(Tty(), {"TERM": "dumb"})


def test_a_closed_terminal_silences_the_view_not_the_stack(files: StackFiles) -> None:
    """After SIGHUP the terminal is gone: writes fail with EIO, and the stack must still stop cleanly."""

    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(5, "Input/output error")

    view = LiveView(files, Gone(), proxies=True, colour=False)
    view.event("stopping...")  # no exception
    append(files.audit_log, audit("30.000", "GET", "eu8-cloud.acronis.com", "/x", 200))
    view.poll()
    assert view.broken
