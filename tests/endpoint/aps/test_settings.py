"""ApsSettings: validated once, loaded from [aps] and CONNECTOR_APS_* like every section."""

from __future__ import annotations

import pytest

from endpoint.aps.settings import JOB_OPERATIONS, ApsSettings
from endpoint.config.loader import ConfigError
from endpoint.config.settings import load_settings


def test_defaults_are_production_safe() -> None:
    settings = ApsSettings()
    assert not settings.development_mode
    assert settings.controller_allowlist == ()
    assert settings.async_operations == ()
    assert (settings.retry_timeout_min, settings.retry_timeout_max) == (60, 119)
    assert settings.controller_timeout == (5.0, 30.0)


def test_environment_reaches_the_section() -> None:
    settings = load_settings(
        None,
        {
            "CONNECTOR_APS_ASYNC_OPERATIONS": "tenants.provision,tenants.unprovision",
            "CONNECTOR_APS_CONTROLLER_ALLOWLIST": "https://apsc.example.net:6308/",
            "CONNECTOR_APS_DEVELOPMENT_MODE": "true",
            "CONNECTOR_APS_SYNC_BUDGET": "2.5",
        },
    )
    assert settings.aps.async_operations == ("tenants.provision", "tenants.unprovision")
    assert settings.aps.controller_allowlist == ("https://apsc.example.net:6308/",)
    assert settings.aps.development_mode is True
    assert settings.aps.sync_budget == 2.5


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("async_operations", "tenants.explode", "aps.async_operations: unknown"),
        ("retry_timeout_min", "0", "aps.retry_timeout_min"),
        ("retry_timeout_max", "5000", "aps.retry_timeout_min/retry_timeout_max"),
        ("job_max_attempts", "0", "aps.job_max_attempts"),
        ("controller_read_timeout", "0", "aps.controller_connect_timeout/controller_read_timeout"),
        ("job_backoff_max", "1", "aps.job_backoff_base/job_backoff_max"),
    ],
)
def test_bad_values_name_their_key(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_settings(None, {f"CONNECTOR_APS_{key.upper()}": value})


def test_every_job_operation_can_be_made_async() -> None:
    assert ApsSettings(async_operations=JOB_OPERATIONS).async_operations == JOB_OPERATIONS
