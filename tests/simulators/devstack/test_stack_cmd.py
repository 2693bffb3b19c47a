"""``python -m endpoint stack`` flags reach the stack options."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from simulators.devstack import stack_cmd
from simulators.devstack.stack import StackOptions
from tests.support.builders import make_settings


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host")
    stack_cmd.configure_parser(parser)
    return parser.parse_args(list(argv))


def test_flags_become_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[StackOptions, Any]] = []
    monkeypatch.setattr(
        stack_cmd, "run_stack", lambda options, faults, **_: seen.append((options, faults)) or 0
    )
    args = parse(
        "--data-dir",
        "/tmp/x",
        "--endpoint-port",
        "9999",
        "--inbound-port",
        "9443",
        "--outbound-port",
        "9081",
        "--acronis-port",
        "9991",
        "--controller-port",
        "9992",
        "--seed",
        "4",
        "--demo-items",
        "5",
        "--fault",
        "503@*?rate=0.5",
        "--fault",
        "407@*",
    )
    assert stack_cmd.run(args, make_settings()) == 0
    assert seen == [
        (
            StackOptions(
                data_dir=Path("/tmp/x"),
                host="127.0.0.1",
                endpoint_port=9999,
                inbound_port=9443,
                outbound_port=9081,
                acronis_port=9991,
                controller_port=9992,
                seed=4,
                demo_items=5,
            ),
            ("503@*?rate=0.5", "407@*"),
        )
    ]


def test_no_proxies_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[StackOptions] = []
    monkeypatch.setattr(stack_cmd, "run_stack", lambda options, faults, **_: seen.append(options) or 0)
    assert stack_cmd.run(parse("--no-proxies", "--host", "127.0.0.2"), make_settings()) == 0
    assert seen[0].proxies is False and seen[0].host == "127.0.0.2" and seen[0].endpoint_port == 8080


def test_gateway_flag(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[StackOptions] = []
    monkeypatch.setattr(stack_cmd, "run_stack", lambda options, faults, **_: seen.append(options) or 0)
    assert stack_cmd.run(parse("--gateway", "jwt"), make_settings()) == 0
    assert seen[0].gateway == "jwt" and seen[0].jwt
    assert stack_cmd.run(parse("--gateway", "both", "--no-proxies"), make_settings()) == 2
    assert "needs the proxies" in capsys.readouterr().err and len(seen) == 1
    with pytest.raises(SystemExit):
        parse("--gateway", "saml")


def test_actions_on_a_stack_that_is_not_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert stack_cmd.run(parse("status", "--data-dir", str(tmp_path)), make_settings()) == 3
    assert f"no stack is running from {tmp_path}" in capsys.readouterr().out
    assert stack_cmd.run(parse("stop", "--data-dir", str(tmp_path)), make_settings()) == 1
    assert stack_cmd.run(parse("restart", "--data-dir", str(tmp_path)), make_settings()) == 2
    assert "name the component" in capsys.readouterr().err


def test_up_is_the_default_action_and_web_needs_the_proxies(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[StackOptions] = []
    monkeypatch.setattr(stack_cmd, "run_stack", lambda options, faults, **_: seen.append(options) or 0)
    assert stack_cmd.run(parse("up", "--web", "--outbound-web-port", "9182"), make_settings()) == 0
    assert seen[0].web and seen[0].outbound_web_port == 9182
    assert stack_cmd.run(parse("--web", "--no-proxies"), make_settings()) == 2
    assert "--web" in capsys.readouterr().err and len(seen) == 1
    with pytest.raises(SystemExit):
        parse("reboot")


def test_restart_sends_the_component_and_its_new_drills(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(stack_cmd.control, "running_pid", lambda root: 4242)

    def send(root: Path, op: str, **args: Any) -> dict[str, Any]:
        sent.append((op, args))
        return {"ok": True, "message": f"{args['component']} restarted"}

    monkeypatch.setattr(stack_cmd.control, "send", send)
    base = ("restart", "outbound-proxy", "--data-dir", str(tmp_path))
    assert stack_cmd.run(parse(*base), make_settings()) == 0
    assert stack_cmd.run(parse(*base, "--fault", "407@*"), make_settings()) == 0
    assert stack_cmd.run(parse(*base, "--fault", ""), make_settings()) == 0
    assert sent == [
        ("restart", {"component": "outbound-proxy"}),  # the drills it had
        ("restart", {"component": "outbound-proxy", "faults": ["407@*"]}),
        ("restart", {"component": "outbound-proxy", "faults": []}),  # none
    ]
    assert capsys.readouterr().out.count("outbound-proxy restarted") == 3
