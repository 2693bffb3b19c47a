"""Outbound settings: DC validation, secrets only by variable name, loading through load_settings."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from endpoint.config.loader import ConfigError
from endpoint.config.settings import load_settings
from endpoint.outbox.settings import AcronisSettings, DatacenterSettings, OutboxSettings
from proxy.errors import SecretNotSet

DC = DatacenterSettings("https://EU8-cloud.acronis.com/", "client-1", "ACRONIS_SECRET_EU8")


def test_datacenters_are_matched_by_normalized_url_only() -> None:
    settings = AcronisSettings(datacenters=(DC,))
    assert settings.find("https://eu8-cloud.acronis.com") is DC
    assert settings.find("https://eu8-cloud.acronis.com:443/") is DC
    assert settings.find("https://eu8-cloud.acronis.com.evil.example") is None
    assert settings.find("http://eu8-cloud.acronis.com") is None


def test_secrets_come_from_the_environment() -> None:
    settings = AcronisSettings(datacenters=(DC,))
    resolved = settings.resolve({"ACRONIS_SECRET_EU8": "s3cret"})
    assert resolved["https://eu8-cloud.acronis.com"].client_secret == "s3cret"
    assert "s3cret" not in repr(resolved)
    with pytest.raises(SecretNotSet, match="ACRONIS_SECRET_EU8") as info:
        settings.resolve({})
    assert (info.value.setting, info.value.variable) == (
        "acronis.datacenters.client_secret_env",
        "ACRONIS_SECRET_EU8",
    )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DatacenterSettings("ftp://dc", "c", "E"), "https://"),
        (lambda: DatacenterSettings("https://dc/api", "c", "E"), "bare base URL"),
        (lambda: DatacenterSettings("https://user:pw@dc", "c", "E"), "bare base URL"),
        (lambda: DatacenterSettings("https://dc", "c", "E", token_path="idp/token"), "token_path"),
        (lambda: AcronisSettings(datacenters=(DC, DC)), "twice"),
        (
            lambda: AcronisSettings(datacenters=(DatacenterSettings("http://dc", "c", "E"),)),
            "allow_plain_http",
        ),
        (lambda: AcronisSettings(batch_size=0), "batch_size"),
        (lambda: AcronisSettings(retry_after_max=600), "retry_after_max"),
        (lambda: OutboxSettings(max_attempts=0), "max_attempts"),
        (lambda: OutboxSettings(poll_interval=0), "poll_interval"),
    ],
)
def test_invalid_values_are_refused(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_plain_http_is_allowed_for_the_simulator_when_asked() -> None:
    settings = AcronisSettings(
        datacenters=(DatacenterSettings("http://127.0.0.1:9", "c", "E"),), allow_plain_http=True
    )
    assert settings.find("http://127.0.0.1:9") is not None


def test_loaded_from_toml_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "connector.toml"
    config.write_text(
        '[proxy]\nurl = "http://proxy.internal:3128"\nusername = "svc"\npassword_env = "PROXY_PW"\n'
        "[acronis]\nbatch_size = 50\n"
        '[[acronis.datacenters]]\nurl = "https://eu8-cloud.acronis.com"\nclient_id = "c-eu8"\n'
        'client_secret_env = "SECRET_EU8"\n'
        '[[acronis.datacenters]]\nurl = "https://us5-cloud.acronis.com"\nclient_id = "c-us5"\n'
        'client_secret_env = "SECRET_US5"\ntoken_path = "/api/2/idp/token"\n'
        '[outbox]\nspool_dir = "/var/spool/connector"\n'
    )
    settings = load_settings(
        config, {"CONNECTOR_OUTBOX_MAX_ATTEMPTS": "5", "CONNECTOR_PROXY_READ_TIMEOUT": "9"}
    )
    assert settings.proxy.url == "http://proxy.internal:3128" and settings.proxy.read_timeout == 9.0
    assert settings.acronis.batch_size == 50 and len(settings.acronis.datacenters) == 2
    assert settings.acronis.datacenters[1].token_path == "/api/2/idp/token"
    assert settings.outbox.max_attempts == 5 and settings.outbox.spool_dir == "/var/spool/connector"


def test_bad_nested_datacenter_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "connector.toml"
    config.write_text('[[acronis.datacenters]]\nurl = "https://dc"\nclient_id = "c"\nclient_secret = "x"\n')
    with pytest.raises(ConfigError, match="client_secret"):
        load_settings(config, {})


def test_worker_id_defaults_to_host_and_pid() -> None:
    assert OutboxSettings().worker == f"{socket.gethostname()[:48]}:{os.getpid()}"
    assert OutboxSettings(worker_id="w1").worker == "w1"
