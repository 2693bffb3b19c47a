"""Progress: a redrawn table on a terminal, plain log lines otherwise, rate-limited."""

from __future__ import annotations

import io
import logging

import pytest

from endpoint.outbox.progress import Progress


def test_terminal_table_is_redrawn_in_place() -> None:
    stream = io.StringIO()
    now = [0.0]
    progress = Progress(stream, tty=True, clock=lambda: now[0])
    progress.queued({"t1": 3, "t2": 1})
    progress.sent("t1", 2)
    progress.failed("t2")
    progress.render()
    first = stream.getvalue()
    assert "t1" in first and "total" in first and "\x1b[" not in first
    progress.dead("t2")
    progress.render()  # within the interval: nothing drawn
    assert stream.getvalue() == first
    now[0] = 1.0
    progress.render()
    assert stream.getvalue()[len(first) :].startswith("\x1b[5F\x1b[J")  # up over the 5 lines drawn before
    totals = progress.totals()
    assert (totals.queued, totals.sent, totals.failed, totals.dead) == (4, 2, 1, 1)


def test_plain_output_logs_lines(caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()
    progress = Progress(stream, tty=False)
    progress.sent("t1")
    with caplog.at_level(logging.INFO, logger="endpoint.outbox.progress"):
        progress.render(force=True)
        progress.render(force=True)  # nothing changed: no new line
    assert stream.getvalue() == ""
    assert [r.getMessage() for r in caplog.records] == ["outbox tenant=t1 remaining=0 sent=1 failed=0 dead=0"]


def test_auto_detects_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert Progress(Tty()).tty and not Progress(io.StringIO()).tty and not Progress(None).tty


def test_an_idle_worker_logs_nothing_new(caplog: pytest.LogCaptureFixture) -> None:
    """Plain mode: every poll refreshes the queue, but only a tenant whose counts changed gets a line."""
    progress = Progress(io.StringIO(), tty=False)
    with caplog.at_level(logging.INFO, logger="endpoint.outbox.progress"):
        for _ in range(100):  # a day of idle polls, in short
            progress.queued({"t1": 2, "t2": 0})
            progress.render(force=True)
        progress.sent("t1")
        progress.queued({"t1": 1, "t2": 0})
        progress.render(force=True)
    assert [r.getMessage() for r in caplog.records] == [
        "outbox tenant=t1 remaining=2 sent=0 failed=0 dead=0",
        "outbox tenant=t2 remaining=0 sent=0 failed=0 dead=0",
        "outbox tenant=t1 remaining=1 sent=1 failed=0 dead=0",
    ]


def test_the_table_shows_rate_and_time_left() -> None:
    stream = io.StringIO()
    now = [0.0]
    progress = Progress(stream, tty=True, clock=lambda: now[0])
    progress.queued({"t1": 600})
    progress.render(force=True)
    assert "remaining" in stream.getvalue() and "time left unknown" in stream.getvalue()
    for second in range(30):  # 2 deliveries a second for 30 s: 120 a minute
        now[0] = float(second)
        progress.sent("t1", 2)
    now[0] = 30.0
    progress.render(force=True)
    assert stream.getvalue().rstrip().endswith("rate 120/min; about 5 min left at this rate")
    now[0] = 200.0  # a quiet spell longer than the window
    assert progress.rate() == 0.0
