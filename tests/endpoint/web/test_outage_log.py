"""A database outage under load must not flood the log.

While the database is down, every request used to write four lines: the unit of work run again after the
lost connection, the 503 access line, and the same retry plus a warning for the refused request's nonce.
All of them go through the rejection sampler (endpoint/observability/logsetup.py): the first few of each
reason per interval, then one summary line with the counts.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import peewee as pw
import pytest

from endpoint.config.sections import LoggingSettings
from endpoint.observability.logsetup import RejectionSampler, configure_logging
from models.db import DatabaseSettings
from tests.support.builders import make_settings
from tests.support.live_endpoint import LiveEndpoint, live_endpoint
from tests.support.two_partner_tenancy import build_tenancy

VERBATIM = 2
REQUESTS = 30


@pytest.fixture
def live(database: pw.Database, db_settings: DatabaseSettings) -> Iterator[LiveEndpoint]:
    build_tenancy()
    with live_endpoint(make_settings(database=db_settings)) as endpoint:
        yield endpoint


@pytest.fixture
def service_log() -> Iterator[tuple[io.StringIO, RejectionSampler]]:
    """The service's own logging (as ``serve`` configures it), into a string, with a long interval."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging(LoggingSettings(rejection_interval=3600, rejections_verbatim=VERBATIM), stream)
    [sampler] = [f for f in root.handlers[0].filters if isinstance(f, RejectionSampler)]
    yield stream, sampler
    root.handlers[:], root.level = saved


@contextmanager
def lost_connection() -> Iterator[None]:
    """Every unit of work finds its connection gone, as while the server is down."""
    raise pw.OperationalError("server closed the connection unexpectedly")
    yield  # pragma: no cover


def test_a_database_outage_writes_a_bounded_number_of_lines_and_a_summary(
    live: LiveEndpoint,
    service_log: tuple[io.StringIO, RejectionSampler],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream, sampler = service_log
    monkeypatch.setattr("endpoint.work.executors.unit_of_work", lambda **_: lost_connection())
    monkeypatch.setattr("endpoint.work.executors.connection_lost", lambda e: True)
    monkeypatch.setattr("endpoint.work.executors.retry_safe", lambda e: True)  # nothing sent: run it again

    statuses = [live.callback("a.p.enablement.read.v1.0").status_code for _ in range(REQUESTS)]
    assert statuses == [503] * REQUESTS
    live.session.close()
    time.sleep(0.5)  # the refused requests' nonces are recorded after the answer, on the loop
    sampler.flush()

    lines = stream.getvalue().splitlines()
    summaries = [line for line in lines if "rejection lines held back" in line]
    written = [
        line for line in lines if line not in summaries and "consumer secrets not refreshed" not in line
    ]
    # Three reasons (the 503 line, the retried unit, the unrecorded nonce), at most VERBATIM lines each.
    assert len(written) <= 3 * VERBATIM, "\n".join(written)
    assert sum(" status=503 " in line for line in written) == VERBATIM
    [summary] = summaries
    assert f"503 database connection lost (OperationalError)={REQUESTS - VERBATIM}" in summary
    held = int(summary.split(" WARNING endpoint.rejections: ", 1)[1].split(" ", 1)[0])
    # Each request: its access line, two retried units (its own, its nonce's), the nonce warning.
    assert held + len(written) >= 4 * REQUESTS
