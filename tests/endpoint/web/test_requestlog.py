"""One structured access line per request: method, path, status, time, correlation, client, fields."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator

import peewee as pw
import pytest
import requests

from models.db import DatabaseSettings
from tests.support.builders import CONSUMER_KEY, make_settings
from tests.support.live_endpoint import LiveEndpoint, live_endpoint
from tests.support.two_partner_tenancy import TENANT_A, build_tenancy

BASE_FIELDS = {"method", "path", "status", "ms", "correlation", "client"}


@pytest.fixture
def live(database: pw.Database, db_settings: DatabaseSettings) -> Iterator[LiveEndpoint]:
    build_tenancy()
    with live_endpoint(make_settings(database=db_settings)) as endpoint:
        yield endpoint


@pytest.fixture
def access(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="endpoint.access")
    return caplog


def records(caplog: pytest.LogCaptureFixture, count: int) -> list[logging.LogRecord]:
    """The line is written just after the response is flushed: wait for ``count`` of them."""
    deadline = time.monotonic() + 2
    while True:
        found = [r for r in caplog.records if r.name == "endpoint.access"]
        if len(found) >= count or time.monotonic() > deadline:
            time.sleep(0.05)  # and make sure no extra line follows
            return [r for r in caplog.records if r.name == "endpoint.access"]
        time.sleep(0.01)


def text_of(record: logging.LogRecord) -> str:
    return record.getMessage() + " " + repr(record.__dict__)


def test_one_record_per_request_with_the_base_fields(
    live: LiveEndpoint, access: pytest.LogCaptureFixture
) -> None:
    response = requests.get(
        live.base_url + "/healthz?token=QUERYSECRET",
        headers={"X-Api-Key": "HEADERSECRET", "User-Agent": "probe/UASECRET"},
        timeout=5,
    )
    [record] = records(access, 1)
    fields = record.fields  # type: ignore[attr-defined]
    assert record.getMessage() == "request" and record.levelno == logging.INFO
    assert not hasattr(record, "rejection")  # answered requests are never sampled away
    assert set(fields) == BASE_FIELDS
    assert (fields["method"], fields["path"], fields["status"]) == ("GET", "/healthz", 200)
    assert fields["correlation"] == response.headers["X-Correlation-Id"]
    assert fields["client"] == "127.0.0.1"
    assert isinstance(fields["ms"], float) and 0 <= fields["ms"] < 5000
    for secret in ("QUERYSECRET", "HEADERSECRET", "UASECRET"):
        assert secret not in text_of(record)


def test_authenticated_callback_adds_the_handler_fields(
    live: LiveEndpoint, access: pytest.LogCaptureFixture
) -> None:
    request_id = str(uuid.uuid4())
    response = live.callback("vendor.app.users_read.v1.0", tenant_id=TENANT_A, request_id=request_id)
    assert response.status_code == 200
    [record] = records(access, 1)
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["principal"] == CONSUMER_KEY
    assert fields["request_id"] == request_id
    assert fields["callback"].endswith("vendor.app.users_read.v1.0")
    assert fields["user"] == "admin"
    assert "reason" not in fields
    authorization = response.request.headers["Authorization"]
    assert authorization not in text_of(record) and "admin-password" not in text_of(record)


@pytest.mark.parametrize(
    ("kwargs", "status", "reason"),
    [
        ({"secret": "wrong-secret-000000"}, 401, "signature mismatch"),
        ({"password": "wrong-password"}, 401, None),
        ({"nonce": "n" * 129}, 400, "malformed nonce"),
    ],
)
def test_rejections_carry_their_reason(
    live: LiveEndpoint,
    access: pytest.LogCaptureFixture,
    kwargs: dict[str, str],
    status: int,
    reason: str | None,
) -> None:
    response = live.callback("a.p.enablement.read.v1.0", **kwargs)
    assert response.status_code == status
    [record] = records(access, 1)
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["status"] == status and fields["reason"]
    if reason is not None:
        assert reason in fields["reason"]
    assert record.levelno == logging.INFO
    assert "wrong-password" not in text_of(record) and "wrong-secret" not in text_of(record)
    # Marked for the sampler (endpoint/observability/logsetup.py), which keys repeats by status and reason.
    assert record.rejection == f"{status} {fields['reason']}"  # type: ignore[attr-defined]


def test_server_errors_are_logged_at_error(
    live: LiveEndpoint, access: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def ping() -> None:
        raise pw.OperationalError("down")

    monkeypatch.setattr("endpoint.web.health._ping_database", ping)
    assert requests.get(live.base_url + "/healthz", timeout=5).status_code == 503
    [record] = records(access, 1)
    assert record.levelno == logging.ERROR and record.fields["status"] == 503  # type: ignore[attr-defined]
    # A 503 is a refusal too: sampled, so an outage under load cannot flood the log.
    assert record.rejection.startswith("503")  # type: ignore[attr-defined]


def test_unrouted_requests_are_logged_too(live: LiveEndpoint, access: pytest.LogCaptureFixture) -> None:
    assert requests.get(live.base_url + "/nope?password=QUERYSECRET", timeout=5).status_code == 404
    [record] = records(access, 1)
    fields = record.fields  # type: ignore[attr-defined]
    assert (fields["path"], fields["status"]) == ("/nope", 404)
    assert "QUERYSECRET" not in text_of(record)
