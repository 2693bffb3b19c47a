"""The stack's ports, files and the connector config it writes."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from endpoint.config.settings import load_settings
from endpoint.provisioning.demo import POSTMAN_PARTNER_ID
from simulators.devstack.components import ACCOUNT_DELAY
from simulators.devstack.layout import (
    ACRONIS_DC,
    CONTROLLER_URI,
    ENDPOINT_IDS,
    JWKS_URL,
    REPO,
    SECRET_ENV,
    StackFiles,
    StackOptions,
    admin_password,
    gateway_partner_password,
    shown,
    write_config,
)


def test_proxied_config_routes_everything_through_the_outbound_proxy(tmp_path: Path) -> None:
    options, files = StackOptions(), StackFiles(tmp_path)
    write_config(options, files)
    settings = load_settings(files.config, {})
    assert settings.endpoint.public_base_url == "https://localhost:8443/"
    assert settings.endpoint.trusted_proxies == ("127.0.0.1/32",)
    assert settings.proxy.url == "http://127.0.0.1:8081" and settings.proxy.ca_bundle == str(files.ca_cert)
    assert settings.acronis.datacenters[0].url == ACRONIS_DC
    assert settings.acronis.datacenters[0].client_secret_env == SECRET_ENV
    assert "sim-secret" not in files.config.read_text()  # the secret comes from the environment only
    assert CONTROLLER_URI in settings.aps.controller_allowlist


def test_plain_config_has_no_proxy(tmp_path: Path) -> None:
    options, files = StackOptions(proxies=False, endpoint_port=9000), StackFiles(tmp_path)
    write_config(options, files)
    settings = load_settings(files.config, {})
    assert (
        settings.endpoint.public_base_url == "http://127.0.0.1:9000/" and settings.endpoint.allow_plain_http
    )
    assert settings.proxy.url is None
    assert set(options.ports()) == {"endpoint"}


def test_ports_name_every_component() -> None:
    assert set(StackOptions().ports()) == {"endpoint", "inbound", "outbound", "acronis", "controller"}


def test_admin_password_is_generated_once_owner_only(tmp_path: Path) -> None:
    files = StackFiles(tmp_path)
    first = admin_password(files)
    assert admin_password(files) == first and len(first) >= 24
    assert stat.S_IMODE(files.admin_password.stat().st_mode) == 0o600


def test_shown_paths() -> None:
    assert shown(REPO / "var" / "local") == "var/local"
    assert shown(Path("/elsewhere/x")) == "/elsewhere/x"


def test_gateway_modes_write_the_jwt_settings(tmp_path: Path) -> None:
    files = StackFiles(tmp_path)
    write_config(StackOptions(gateway="jwt"), files)
    config = tomllib.loads(files.config.read_text())
    assert config["endpoint"]["callback_auth"] == ["acronis_jwt"]
    assert config["acronis_jwt"] == {"jwks_url": JWKS_URL, "endpoint_ids": list(ENDPOINT_IDS)}
    assert config["callbacks"]["mirroring"] is True
    settings = load_settings(files.config, {})  # every value as the endpoint validates it
    assert settings.endpoint.callback_auth == ("acronis_jwt",)
    assert settings.acronis_jwt.endpoint_ids == ENDPOINT_IDS and settings.acronis_jwt.jwks_url == JWKS_URL
    assert settings.callbacks.mirroring and settings.callbacks.mirrored_partners_parent == POSTMAN_PARTNER_ID
    assert config["proxy"]["ca_bundle"] == str(files.ca_cert)  # the JWKS comes through the outbound proxy
    write_config(StackOptions(gateway="both"), files)
    assert tomllib.loads(files.config.read_text())["endpoint"]["callback_auth"] == ["oauth1", "acronis_jwt"]
    write_config(StackOptions(), files)
    assert "callback_auth" not in files.config.read_text() and "acronis_jwt" not in files.config.read_text()


def test_gateway_mode_is_validated() -> None:
    assert StackOptions(gateway="both").jwt and not StackOptions().jwt
    with pytest.raises(ValueError, match="one of"):
        StackOptions(gateway="saml")
    with pytest.raises(ValueError, match="needs the proxies"):
        StackOptions(gateway="jwt", proxies=False)


def test_the_gateway_partner_password_is_kept_like_the_admin_one(tmp_path: Path) -> None:
    files = StackFiles(tmp_path)
    first = gateway_partner_password(files)
    assert gateway_partner_password(files) == first != admin_password(files)
    assert stat.S_IMODE(files.gateway_password.stat().st_mode) == 0o600


def test_the_demo_shows_the_async_path_within_seconds(tmp_path: Path) -> None:
    """A provisioning that waits for the (slow) controller simulator outlasts the sync budget: 202."""
    files = StackFiles(tmp_path)
    write_config(StackOptions(), files)
    aps = load_settings(files.config, {}).aps
    assert aps.sync_budget < ACCOUNT_DELAY
    assert (aps.retry_timeout_min, aps.retry_timeout_max) == (1, 2)


def test_web_ports_are_checked_only_with_web() -> None:
    ports = StackOptions(web=True, inbound_web_port=9444, outbound_web_port=9082).ports()
    assert ports["inbound web UI"] == ("127.0.0.1", 9444) and ports["outbound web UI"] == ("127.0.0.1", 9082)
    with pytest.raises(ValueError, match="--web"):
        StackOptions(web=True, proxies=False)
