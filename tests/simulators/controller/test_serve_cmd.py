"""``serve`` as a process: prints where it listens, and with --create-instances does what APSC does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import peewee as pw
import pytest
import requests

from endpoint.aps.settings import ApsSettings
from models import ApsInstance
from models.db import DatabaseSettings
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

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def live(database: pw.Database, db_settings: DatabaseSettings) -> Iterator[LiveEndpoint]:
    create_consumer()
    create_org("Provider Partner")
    settings = make_settings(database=db_settings, aps=ApsSettings(**{**FAST, "development_mode": True}))
    with live_endpoint(settings) as endpoint:
        yield endpoint


@pytest.fixture
def serve(live: LiveEndpoint, tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    record = tmp_path / "received.jsonl"
    argv = [sys.executable, "-m", "simulators.controller", "--instance", str(tmp_path / "none.json"),
            "--connect-to", live.base_url, "serve", "--port", "0", "--token-env", "SIM_TOKEN",
            "--create-instances", "--record", str(record)]  # fmt: skip
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "SIM_TOKEN": "tok-1",
        "LANG": "C.UTF-8",
    }
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else "no output"
        yield json.loads(line), record
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_registration_creates_the_instance_on_the_connector(serve: tuple[dict[str, str], Path]) -> None:
    listening, record = serve
    document = {
        "aps": {
            "endpoint": PUBLIC_URL,
            "network": "proxy",
            "auth": {"oauth": {"key": CONSUMER_KEY, "secret": CONSUMER_SECRET}},
        },
        "app": {"hubID": "hub-1"},
    }
    response = requests.post(
        listening["listening"] + "aps/2/applications",
        json=document,
        headers={"APS-Token": "tok-1"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    instance_id = response.json()["app"]["aps"]["id"]
    row = ApsInstance.get_by_id(instance_id)
    assert row.consumer_key == CONSUMER_KEY and row.controller_uri == listening["public_base"]
    assert json.loads(record.read_text().splitlines()[0])["status"] == 201
