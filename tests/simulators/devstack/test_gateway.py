"""Gateway mode of the stack: the mapping scenario's partner admin, and the gateway calls it prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from endpoint.auth.passwords import make_hasher
from endpoint.config.settings import load_settings
from endpoint.provisioning.demo import POSTMAN_PARTNER_ID, seed_demo
from endpoint.provisioning.tenancy import ensure_root_partner
from models import Organization, User, init_database, migrate
from models.db import DatabaseSettings
from simulators.devstack import gateway
from simulators.devstack.layout import GATEWAY_LOGIN, StackFiles, StackOptions

FAST = "argon2_time_cost = 1\nargon2_memory_kib = 1024\nargon2_parallelism = 1\n"


def demo_database(tmp_path: Path, demo: bool = True) -> Path:
    """A migrated SQLite file with the demo tenancy, and a config naming it (fast argon2)."""
    url = f"sqlite:///{tmp_path / 'connector.db'}"
    database = init_database(DatabaseSettings(url=url))
    migrate(database)
    with database.connection_context():
        root, _ = ensure_root_partner("Vendor Root", POSTMAN_PARTNER_ID)
        if demo:
            seed_demo(root)
    database.close()
    config = tmp_path / "connector.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[auth]\n{FAST}', encoding="utf-8")
    return config


def test_the_partner_admin_is_created_once_in_the_demo_sub_partner(tmp_path: Path) -> None:
    config = demo_database(tmp_path)
    partner_id = gateway.seed_partner_admin(str(config), GATEWAY_LOGIN, "a-long-password-1")
    assert gateway.seed_partner_admin(str(config), GATEWAY_LOGIN, "a-long-password-1") == partner_id
    settings = load_settings(config, {})
    database = init_database(settings.database)
    with database.connection_context():
        user = User.get(User.login == GATEWAY_LOGIN)
        assert user.organization_id == partner_id
        assert Organization.get_by_id(partner_id).name == gateway.PARTNER_NAME != "Vendor Root"
        assert make_hasher(settings.auth).verify(user.password_hash, "a-long-password-1")
    database.close()


def test_main_needs_the_demo_data_and_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = demo_database(tmp_path, demo=False)
    assert gateway.main(["--config", str(config)]) == 2
    assert gateway.PASSWORD_ENV in capsys.readouterr().err
    monkeypatch.setenv(gateway.PASSWORD_ENV, "a-long-password-1")
    assert gateway.main(["--config", str(config)]) == 2
    assert "demo data" in capsys.readouterr().err


def test_the_summary_names_keys_password_files_and_every_scenario() -> None:
    options, files = StackOptions(gateway="jwt"), StackFiles(Path("/data"))
    text = "\n".join(gateway.summary_lines(options, files))
    assert "--url https://localhost:8443/callback --keys-dir /data/acronis-keys" in text
    assert "--ca-bundle /data/mitm/mitmproxy-ca-cert.pem" in text
    assert all(f"scenario {name}" in text for name in ("mirroring", "mapping", "authorization"))
    assert f"--login {GATEWAY_LOGIN} --password-file /data/gateway-partner-password" in text
    assert "jwks --simulator http://127.0.0.1:9101 rotate" in text
    rows = dict(gateway.summary_rows(options, files))
    assert rows["/callback accepts"] == "Bearer JWT only"
    assert dict(gateway.summary_rows(StackOptions(gateway="both"), files))["/callback accepts"].startswith(
        "OAuth"
    )
