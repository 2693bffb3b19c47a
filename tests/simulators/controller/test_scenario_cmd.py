"""``scenario NAME`` on the command line: one step a line, ids kept between runs, a useful exit status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import peewee as pw
import pytest

from endpoint.aps.settings import ApsSettings
from models.db import DatabaseSettings
from simulators.controller.cli import main
from simulators.controller.server import ControllerServer
from tests.support.aps_builders import FAST
from tests.support.builders import (
    CONSUMER_KEY,
    CONSUMER_SECRET,
    PUBLIC_URL,
    create_consumer,
    create_org,
    make_settings,
)
from tests.support.live_endpoint import LiveEndpoint, live_endpoint


@pytest.fixture
def controller() -> Iterator[ControllerServer]:
    server = ControllerServer().start()
    server.trust(CONSUMER_KEY, CONSUMER_SECRET)
    yield server
    server.stop()


@pytest.fixture
def live(database: pw.Database, db_settings: DatabaseSettings) -> Iterator[LiveEndpoint]:
    create_consumer()
    create_org("Provider Partner")
    settings = make_settings(database=db_settings, aps=ApsSettings(**{**FAST, "development_mode": True}))
    with live_endpoint(settings) as endpoint:
        yield endpoint


@pytest.fixture
def document(tmp_path: Path) -> Path:
    path = tmp_path / "app_instance.json"
    oauth = {"key": CONSUMER_KEY, "secret": CONSUMER_SECRET}
    path.write_text(
        json.dumps({"aps": {"endpoint": PUBLIC_URL, "network": "proxy", "auth": {"oauth": oauth}}})
    )
    return path


def test_scenarios_run_one_at_a_time_and_print_each_step(
    live: LiveEndpoint,
    controller: ControllerServer,
    document: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = tmp_path / "state.json"
    head = ["--instance", str(document), "--connect-to", live.base_url, "scenario"]
    tail = ["--state", str(state), "--poll-cap", "0.1"]
    assert main([*head, "create-instance", "--controller-uri", controller.url, *tail]) == 0
    assert main([*head, "provision-tenant", *tail]) == 0  # the controller URI is kept in the state file
    assert main([*head, "read-usage", *tail]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "create-instance: POST app -> 201 ok" in out
    assert "provision-tenant: POST tenants -> 201 ok" in out
    assert any(line.startswith("read-usage: USERS = {") for line in out)
    kept = json.loads(state.read_text())
    assert {"instance_id", "tenant_id", "controller_uri"} <= set(kept) and kept[
        "controller_uri"
    ] == controller.url


def test_an_unexpected_status_fails_the_run(
    live: LiveEndpoint,
    controller: ControllerServer,
    document: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = tmp_path / "state.json"
    argv = ["--instance", str(document), "--connect-to", live.base_url, "scenario"]
    assert main([*argv, "read-usage", "--state", str(state)]) == 2  # nothing created yet
    assert "run the scenario that creates" in capsys.readouterr().err
    state.write_text(json.dumps({"instance_id": "5d1e4c2a-8f3b-4a6d-9c7e-1b2a3c4d5e6f", "tenant_id": "x"}))
    assert main([*argv, "read-usage", "--controller-uri", controller.url, "--state", str(state)]) == 1
    assert "UNEXPECTED" in capsys.readouterr().out
