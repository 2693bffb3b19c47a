"""The gateway simulator's command line: a callback with each token kind, credentials, clean failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulators.gateway.cli import main
from simulators.gateway.scenarios import SCENARIOS
from simulators.gateway.tokens import TOKEN_KINDS
from tests.simulators.gateway.conftest import Served
from tests.simulators.gateway.fake_cyberapp import LOGIN, PASSWORD
from tests.support.simulator_processes import ROOT


def base(served: Served) -> list[str]:
    return ["--url", served.url, "--keys-dir", str(served.keys_dir)]


def test_a_mirroring_callback_prints_status_and_answer(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*base(served), "callback", "a.p.partner.mirroring.get_state.v1.0", "--tenant", "t1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("HTTP 200\n") and json.loads(out.split("\n", 1)[1])["payload"] == {
        "state": "DISABLED"
    }
    sent = served.app.received[-1]
    assert sent["body"]["context"]["endpoint_id"] == "cti.a.p.acgw.endpoint.v1.0~vendor.app.endpoint.v1.0"
    assert "payload" not in sent["body"]


def test_credentials_payload_extra_and_endpoint_id_reach_the_request(served: Served, tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text(PASSWORD + "\n")
    argv = [
        *base(served),
        "callback",
        "a.p.enablement.write.v1.0",
        "--payload",
        '{"vendor_tenant_id": "org-partner", "acronis_tenant_id": "a1"}',
        "--extra",
        '{"k": "v"}',
        "--endpoint-id",
        "cti.a.p.acgw.endpoint.v1.1~vendor.app.endpoint.v1.1",
        "--login",
        LOGIN,
        "--password-file",
        str(password),
    ]
    assert main(argv) == 0
    sent = served.app.received[-1]
    assert sent["body"]["payload"]["acronis_tenant_id"] == "a1" and served.app.mapped_partner == "a1"
    assert sent["headers"]["X-CyberApp-Extra"] == "eyJrIjoidiJ9"


@pytest.mark.parametrize("kind", [k for k in TOKEN_KINDS if k != "valid"])
def test_each_broken_token_is_refused_with_exit_status_1(
    served: Served, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*base(served), "callback", "a.p.partner.mirroring.get_state.v1.0", "--token", kind]
    assert main(argv) == 1
    assert capsys.readouterr().out.startswith("HTTP 401")


def test_clean_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", "http://x/", "--keys-dir", str(tmp_path), "callback", "c.v1.0"]) == 2
    assert "not a readable key ring" in capsys.readouterr().err
    assert main(["--url", "http://x/", "callback", "c.v1.0", "--login", "a"]) == 2
    assert "--password-file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["callback", "c.v1.0"])
    assert "--url is required" in capsys.readouterr().err


def test_an_unreachable_url_is_exit_status_3(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--url", "http://127.0.0.1:9/callback", "--keys-dir", str(served.keys_dir), "callback", "c.v1.0"]
    assert main(argv) == 3 and "ConnectionError" in capsys.readouterr().err


def test_help_lists_scenarios_and_token_kinds() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "simulators.gateway", "scenario", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert all(name in help_text for name in SCENARIOS)
    callback_help = subprocess.run(
        [sys.executable, "-m", "simulators.gateway", "callback", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert "other-app" in callback_help and "unknown-kid" in callback_help
