"""``jwks ACTION``: each action is one call to the simulator's controls, printed with its status."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from simulators.gateway import jwks_cmd
from simulators.gateway.cli import main
from tests.support.simulator_processes import ROOT


def args(action: str, **extra: object) -> argparse.Namespace:
    return argparse.Namespace(action=action, keep=1, status=503, simulator="http://sim", **extra)


@pytest.mark.parametrize(
    ("action", "call"),
    [
        ("show", ("GET", "/_sim/jwks", None)),
        ("rotate", ("POST", "/_sim/jwks/rotate", {"keep": 1})),
        ("withhold", ("POST", "/_sim/jwks/withhold", {"keep": 1})),
        ("publish", ("POST", "/_sim/jwks/publish", None)),
        ("down", ("POST", "/_sim/faults", {"faults": [{"endpoint": "jwks", "status": 503, "count": -1}]})),
        ("up", ("DELETE", "/_sim/faults?endpoint=jwks", None)),
    ],
)
def test_each_action_maps_to_one_control_call(action: str, call: tuple[str, str, object]) -> None:
    assert jwks_cmd.request_for(args(action)) == call


@pytest.fixture
def simulator_url(tmp_path: Path) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.acronis_api", "--port", "0", "--keys-dir", str(tmp_path / "k")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())["listening"]
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_down_then_up_against_the_real_simulator(
    simulator_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["jwks", "down", "--simulator", simulator_url, "--status", "502"]) == 0
    assert requests.get(simulator_url + "/api/idp/v1/keys", timeout=5).status_code == 502
    assert main(["jwks", "up", "--simulator", simulator_url]) == 0
    assert requests.get(simulator_url + "/api/idp/v1/keys", timeout=5).status_code == 200
    assert main(["jwks", "withhold", "--simulator", simulator_url]) == 0
    out = capsys.readouterr().out
    withheld = json.loads(out[out.rindex("HTTP 200") + len("HTTP 200") :])["new_kid"]
    kids = [k["kid"] for k in requests.get(simulator_url + "/api/idp/v1/keys", timeout=5).json()["keys"]]
    assert withheld not in kids
    assert main(["jwks", "show", "--simulator", simulator_url]) == 0
