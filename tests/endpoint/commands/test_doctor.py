"""connector doctor: one line per check, exit 1 when one fails, every network check through the proxy."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from endpoint.commands.cli import main
from models import db
from simulators.forward_proxy import ForwardProxy
from tests.support.simulator_processes import free_port

PUBLIC = "https://connector.example.com/"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    assert main(["migrate", "--db", url], environ={}) == 0
    yield url
    if db.obj is not None:
        db.obj.close_all()


@pytest.fixture
def web_server() -> Iterator[str]:
    """Any HTTP server: doctor only asks whether something answers."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def doctor(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = main(["--public-url", PUBLIC, "doctor", *argv], environ={})
    return code, capsys.readouterr().out.splitlines()


def test_offline_checks_config_and_database(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = doctor(capsys, "--db", database, "--offline")
    assert code == 0
    assert lines[0] == f"ok    config     public URL {PUBLIC}"
    assert lines[1].startswith("ok    database   sqlite:///") and "schema version" in lines[1]
    assert lines[-1] == "all checks passed"


def test_a_missing_database_fails_its_check_and_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = doctor(capsys, "--db", f"sqlite:///{tmp_path / 'typo.db'}", "--offline")
    assert code == 1
    assert lines[1].startswith("FAIL  database") and "run `connector init` first" in lines[1]
    assert not (tmp_path / "typo.db").exists()


def test_a_dead_proxy_is_reported(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    code, lines = doctor(capsys, "--db", database, "--set", f"proxy.url={dead}")
    assert code == 1
    assert lines[2].startswith(f"FAIL  proxy      {dead}: ") and "is the proxy running?" in lines[2]


def test_a_data_center_is_reached_through_the_proxy(
    database: str, web_server: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    proxy = ForwardProxy().start()
    config = tmp_path / "connector.toml"
    config.write_text(
        f'[proxy]\nurl = "{proxy.url}"\n[acronis]\nallow_plain_http = true\n'
        f'[[acronis.datacenters]]\nurl = "{web_server}"\nclient_id = "c"\nclient_secret_env = "S"\n'
    )
    try:
        code, lines = doctor(capsys, "--db", database, "--config", str(config))
    finally:
        proxy.stop()
    assert code == 0, lines
    assert lines[2].startswith(f"ok    proxy      {proxy.url} accepts connections")
    assert lines[3].startswith(f"ok    acronis    {web_server} answers (HTTP ")
    assert [flow["method"] for flow in proxy.flows] == ["GET"]  # the check went through the proxy


def test_with_mirroring_the_parent_of_mirrored_partners_must_be_a_partner(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from models import CUSTOMER, PARTNER, Organization, init_database
    from models.db import DatabaseSettings

    bound = init_database(DatabaseSettings(url=database), create=False)
    with bound.connection_context():
        root = Organization.create(name="Vendor Root", kind=PARTNER)
        shop = Organization.create(name="Shop", kind=CUSTOMER, parent=root)
    missing = "99999999-9999-4999-8999-999999999999"
    verdicts = {
        root.id: "ok    mirroring  mirrored partners go under Vendor Root",
        shop.id: f"FAIL  mirroring  callbacks.mirrored_partners_parent {shop.id} is a customer",
        missing: f"FAIL  mirroring  callbacks.mirrored_partners_parent {missing} is no organization",
    }
    for parent, verdict in verdicts.items():
        setting = f"callbacks.mirrored_partners_parent={parent}"
        code, lines = doctor(
            capsys, "--db", database, "--offline", "--set", "callbacks.mirroring=true", "--set", setting
        )
        assert code == (0 if verdict.startswith("ok") else 1)
        assert lines[2].startswith(verdict), lines
    code, lines = doctor(capsys, "--db", database, "--offline")
    assert code == 0 and [line.split()[1] for line in lines[:-1]] == ["config", "database"]  # off: unchecked
