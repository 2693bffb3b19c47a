"""load_settings (file < environment < flags) and the validation of each settings section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from endpoint.config.loader import ConfigError
from endpoint.config.sections import AuthSettings, EndpointSettings, LoggingSettings, ServerSettings
from endpoint.config.settings import Settings, load_settings


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "connector.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -- load_settings ---------------------------------------------------------------------------------
def test_defaults_without_any_source() -> None:
    settings = load_settings(None, {})
    assert isinstance(settings, Settings)
    assert settings.server == ServerSettings() and settings.endpoint == EndpointSettings()


@pytest.mark.parametrize(
    ("env_port", "override_port", "expected"),
    [(None, None, 1000), ("2000", None, 2000), ("2000", 3000, 3000), (None, "3000", 3000)],
)
def test_precedence_file_then_environment_then_overrides(
    tmp_path: Path, env_port: str | None, override_port: Any, expected: int
) -> None:
    path = write_config(tmp_path, "[server]\nport = 1000\nhost = '10.0.0.5'\n")
    environ = {"CONNECTOR_SERVER_PORT": env_port} if env_port else {}
    overrides = {"server.port": override_port} if override_port else None
    settings = load_settings(path, environ, overrides)
    assert settings.server.port == expected
    assert settings.server.host == "10.0.0.5"  # untouched keys keep the file's value


def test_environment_keys_may_contain_underscores_and_are_coerced() -> None:
    environ = {
        "CONNECTOR_ENDPOINT_PUBLIC_BASE_URL": "https://connector.example.com/",
        "CONNECTOR_ENDPOINT_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.0.0/16",
        "CONNECTOR_AUTH_CACHE_SIZE": "5",
        "CONNECTOR_ENDPOINT_ALLOW_PLAIN_HTTP": "off",
    }
    settings = load_settings(None, environ)
    assert settings.endpoint.public_base_url == "https://connector.example.com/"
    assert settings.endpoint.trusted_proxies == ("10.0.0.0/8", "192.168.0.0/16")
    assert settings.auth.cache_size == 5
    assert settings.endpoint.allow_plain_http is False


def test_file_values_are_typed(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        "[endpoint]\npublic_base_url = 'https://c.example.com/'\ntrusted_proxies = ['10.0.0.0/8']\n"
        "[logging]\nformat = 'json'\n",
    )
    settings = load_settings(path, {})
    assert settings.endpoint.trusted_proxies == ("10.0.0.0/8",)
    assert settings.logging.format == "json"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[admin]\npassword = 'x'\n", r"^admin: unknown section \(known: endpoint, server, "),
        ("port = 8080\n", r"^port: unknown section"),
        ("endpoint = 5\n", r"^endpoint: must be a table$"),
        ("[server]\nport = \n", r"config file '.*connector\.toml': "),
        ("[server\n", r"config file '.*connector\.toml': "),
        ("[server]\nbogus = 1\n", r"^server\.bogus: unknown setting"),
        ("[server]\nport = 'eighty'\n", r"^server\.port: "),
        ("[server]\nport = 70000\n", r"^server\.port: must be 0\.\.65535$"),
    ],
)
def test_bad_config_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write_config(tmp_path, text), {})


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"config file '.*nope\.toml': No such file"):
        load_settings(missing, {})


def test_environment_of_other_sections_and_programs_is_ignored() -> None:
    environ = {
        "CONNECTOR_ADMIN_PASSWORD": "hunter2",  # bootstrap's, not a settings section
        "CONNECTOR_CONFIG": "/etc/connector.toml",  # the CLI's
        "CONNECTOR_": "x",
        "CONNECTOR_SERVER": "x",  # a section without a key
        "SERVER_PORT": "1",  # no prefix
        "connector_server_port": "1",  # the prefix is case-sensitive
    }
    assert load_settings(None, environ) == load_settings(None, {})


def test_environment_with_an_unknown_key_of_a_known_section_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^server\.bogus: unknown setting"):
        load_settings(None, {"CONNECTOR_SERVER_BOGUS": "1"})


@pytest.mark.parametrize("dotted", ["nosuch.key", "server", "server."])
def test_unknown_override_keys_are_rejected(dotted: str) -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(None, {}, {dotted: "1"})


def test_validation_errors_name_the_section_and_key() -> None:
    with pytest.raises(ConfigError, match=r"^endpoint\.mount_path: must start and end with '/'$"):
        load_settings(None, {}, {"endpoint.mount_path": "connector"})


# -- EndpointSettings ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({}, None),
        ({"public_base_url": "https://c.example.com/"}, None),
        ({"public_base_url": "http://c.example.com/"}, "must be https://"),
        ({"public_base_url": "http://127.0.0.1:8080/", "allow_plain_http": True}, None),
        ({"public_base_url": "ftp://c.example.com/"}, "absolute https:// URL"),
        ({"public_base_url": "c.example.com/aps"}, "absolute https:// URL"),
        ({"public_base_url": "https:///path"}, "absolute https:// URL"),
        ({"public_base_url": "https://c.example.com/?a=1"}, "query, fragment or credentials"),
        ({"public_base_url": "https://c.example.com/#top"}, "query, fragment or credentials"),
        ({"public_base_url": "https://user:pw@c.example.com/"}, "query, fragment or credentials"),
        ({"public_base_url": "https://user@c.example.com/"}, "query, fragment or credentials"),
        ({"mount_path": "/"}, None),
        ({"mount_path": "/connector/"}, None),
        ({"mount_path": "/connector"}, "mount_path"),
        ({"mount_path": "connector/"}, "mount_path"),
        ({"mount_path": ""}, "mount_path"),
        ({"trusted_proxies": ("10.0.0.0/8", "::1/128", "192.168.1.7")}, None),
        ({"trusted_proxies": ("10.0.0.0/33",)}, "trusted_proxies: '10.0.0.0/33' is not a CIDR"),
        ({"trusted_proxies": ("proxy.example",)}, "trusted_proxies"),
        ({"timestamp_window": 1}, None),
        ({"timestamp_window": 600}, None),
        ({"timestamp_window": 0}, "timestamp_window: must be 1..600"),
        ({"timestamp_window": 601}, "timestamp_window: must be 1..600"),
        ({"signature_methods": ("HMAC-SHA1",)}, None),
        ({"signature_methods": ("HMAC-SHA256", "HMAC-SHA1")}, None),
        ({"signature_methods": ()}, "signature_methods"),
        ({"signature_methods": ("HMAC-SHA1", "PLAINTEXT")}, "signature_methods"),
        ({"signature_methods": ("RSA-SHA1",)}, "signature_methods"),
        ({"max_body_size": 1023}, "max_body_size"),
        ({"max_body_size": 64 * 1024 * 1024 + 1}, "max_body_size"),
    ],
)
def test_endpoint_settings_validation(fields: dict[str, Any], error: str | None) -> None:
    if error is None:
        EndpointSettings(**fields)
    else:
        with pytest.raises(ValueError, match=error):
            EndpointSettings(**fields)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://Connector.Example.COM/", "https://connector.example.com"),
        ("https://connector.example.com", "https://connector.example.com"),
        ("https://connector.example.com:443/aps/", "https://connector.example.com/aps"),
        ("https://connector.example.com:8443/", "https://connector.example.com:8443"),
        ("http://connector.example.com:80/", "http://connector.example.com"),
        ("http://connector.example.com:443/", "http://connector.example.com:443"),
        ("https://[2001:DB8::1]:8443/x/", "https://[2001:db8::1]:8443/x"),
        ("https://[::1]:443/", "https://[::1]"),
        ("https://c.example.com/a/B//", "https://c.example.com/a/B"),
    ],
)
def test_public_base_is_normalized(url: str, expected: str) -> None:
    assert EndpointSettings(public_base_url=url, allow_plain_http=True).public_base == expected


@pytest.mark.parametrize("url", ["https://c.example.com:abc/", "https://c.example.com:99999/"])
def test_public_url_with_an_invalid_port_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^endpoint\.public_base_url: "):
        load_settings(None, {}, {"endpoint.public_base_url": url})


def test_require_public_url() -> None:
    with pytest.raises(ConfigError, match=r"^endpoint\.public_base_url: required"):
        EndpointSettings().require_public_url()
    EndpointSettings(public_base_url="https://c.example.com/").require_public_url()


def test_proxy_networks_are_parsed() -> None:
    networks = EndpointSettings(trusted_proxies=("10.1.2.3/8", "::1")).proxy_networks
    assert [str(n) for n in networks] == ["10.0.0.0/8", "::1/128"]


# -- the other sections ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "fields", "error"),
    [
        (ServerSettings, {"port": 0}, None),
        (ServerSettings, {"port": 65535}, None),
        (ServerSettings, {"port": -1}, "port"),
        (ServerSettings, {"max_connections": 1, "idle_connection_timeout": 1}, None),
        (ServerSettings, {"max_connections": 0}, "max_connections"),
        (ServerSettings, {"idle_connection_timeout": 0.5}, "idle_connection_timeout"),
        (ServerSettings, {"port": 65536}, "port"),
        (ServerSettings, {"workers": 0}, "workers"),
        (ServerSettings, {"db_threads": 0}, "db_threads"),
        (ServerSettings, {"max_header_size": 1024}, None),
        (ServerSettings, {"max_header_size": 1023}, "max_header_size"),
        (AuthSettings, {"verify_threads": 0}, None),
        (AuthSettings, {"verify_threads": -1}, "verify_threads"),
        (AuthSettings, {"cache_size": 0}, "cache_size"),
        (AuthSettings, {"max_pending_verifies": 0}, "max_pending_verifies"),
        (AuthSettings, {"failure_limit": 0}, "failure_limit"),
        (AuthSettings, {"pair_failure_limit": 0}, "pair_failure_limit"),
        (AuthSettings, {"client_failure_soft_limit": 0}, "client_failure_soft_limit"),
        (AuthSettings, {"failure_max_delay": 31}, "failure_max_delay"),
        (EndpointSettings, {"max_buffered_body": 1024}, "max_buffered_body"),
        (EndpointSettings, {"secrets_refresh": 0}, "secrets_refresh"),
        (ServerSettings, {"db_mode": "fibers"}, "db_mode"),
        (AuthSettings, {"argon2_memory_kib": 32, "argon2_parallelism": 4}, None),
        (AuthSettings, {"argon2_memory_kib": 31, "argon2_parallelism": 4}, "argon2_memory_kib"),
        (LoggingSettings, {"level": "debug"}, None),
        (LoggingSettings, {"level": "ERROR", "format": "json"}, None),
        (LoggingSettings, {"level": "TRACE"}, "level"),
        (LoggingSettings, {"level": "CRITICAL"}, "level"),
        (LoggingSettings, {"format": "xml"}, "format"),
        (LoggingSettings, {"format": "JSON"}, "format"),
        (LoggingSettings, {"rejection_interval": 1, "rejections_verbatim": 1}, None),
        (LoggingSettings, {"rejection_interval": 0.5}, "rejection_interval"),
        (LoggingSettings, {"rejection_interval": 3601}, "rejection_interval"),
        (LoggingSettings, {"rejections_verbatim": 0}, "rejections_verbatim"),
    ],
)
def test_section_validation(cls: type, fields: dict[str, Any], error: str | None) -> None:
    if error is None:
        cls(**fields)
    else:
        with pytest.raises(ValueError, match=rf"^{error}: "):
            cls(**fields)


def test_a_secret_variable_named_like_an_override_gets_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"^proxy\.password: .*CONNECTOR_PROXY_PASSWORD.*another name"):
        load_settings(None, {"CONNECTOR_PROXY_PASSWORD": "hunter2"})


# -- the gateway's JWT: endpoint.callback_auth and [acronis_jwt] ----------------------------------------
GATEWAY_ENDPOINT = "cti.a.p.acgw.endpoint.v1.0~vendor.app.endpoint.v1.0"


def test_callback_auth_defaults_to_oauth1_and_the_gateway_defaults_to_acronis_cloud() -> None:
    settings = load_settings(None, {})
    assert settings.endpoint.callback_auth == ("oauth1",)
    assert settings.acronis_jwt.jwks_url == "https://acronis.cloud/api/idp/v1/keys"
    assert settings.acronis_jwt.issuers == ("https://acronis.cloud",)
    assert settings.acronis_jwt.endpoint_ids == ()
    assert (settings.acronis_jwt.leeway, settings.acronis_jwt.refresh_interval) == (60, 3600.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("oauth1", ("oauth1",)),
        ("acronis_jwt", ("acronis_jwt",)),
        ("oauth1, acronis_jwt", ("oauth1", "acronis_jwt")),
        ("acronis_jwt,oauth1", ("acronis_jwt", "oauth1")),
    ],
)
def test_callback_auth_from_the_environment(value: str, expected: tuple[str, ...]) -> None:
    environ = {
        "CONNECTOR_ENDPOINT_CALLBACK_AUTH": value,
        "CONNECTOR_ACRONIS_JWT_ENDPOINT_IDS": GATEWAY_ENDPOINT,
    }
    assert load_settings(None, environ).endpoint.callback_auth == expected


@pytest.mark.parametrize("value", [[], ["oauth"], ["oauth1", "oauth1"], ["jwt"], ["OAUTH1"]])
def test_callback_auth_takes_only_the_two_schemes_each_once(value: list[str]) -> None:
    with pytest.raises(ConfigError, match=r"^endpoint\.callback_auth: one or both of oauth1, acronis_jwt"):
        load_settings(None, {}, {"endpoint.callback_auth": value})


def test_acronis_jwt_needs_endpoint_ids_checked_at_load_time(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[endpoint]\ncallback_auth = ['oauth1', 'acronis_jwt']\n")
    with pytest.raises(
        ConfigError,
        match=r"^acronis_jwt\.endpoint_ids: required when endpoint\.callback_auth lists acronis_jwt$",
    ):
        load_settings(path, {})
    settings = load_settings(path, {}, {"acronis_jwt.endpoint_ids": [GATEWAY_ENDPOINT]})
    assert settings.acronis_jwt.endpoint_ids == (GATEWAY_ENDPOINT,)


def test_the_acronis_jwt_section_from_file_and_environment(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        "[acronis_jwt]\njwks_url = 'https://cloud.acronis.com/api/idp/v1/keys'\n"
        "issuers = ['https://acronis.cloud', 'https://cloud.acronis.com']\n"
        f"endpoint_ids = ['{GATEWAY_ENDPOINT}', 'cti.a.p.acgw.endpoint.v1.1~vendor.app.endpoint.v1.1']\n",
    )
    environ = {"CONNECTOR_ACRONIS_JWT_LEEWAY": "30", "CONNECTOR_ACRONIS_JWT_REFRESH_INTERVAL": "600"}
    jwt = load_settings(path, environ).acronis_jwt
    assert jwt.jwks_url == "https://cloud.acronis.com/api/idp/v1/keys"
    assert jwt.issuers == ("https://acronis.cloud", "https://cloud.acronis.com")
    assert jwt.endpoint_ids[1] == "cti.a.p.acgw.endpoint.v1.1~vendor.app.endpoint.v1.1"
    assert (jwt.leeway, jwt.refresh_interval) == (30, 600.0)


def test_acronis_section_variables_are_not_taken_for_acronis_jwt() -> None:
    # The section "acronis" is a prefix of "acronis_jwt": the longest section name wins.
    assert load_settings(None, {"CONNECTOR_ACRONIS_BATCH_SIZE": "7"}).acronis.batch_size == 7
    with pytest.raises(ConfigError, match=r"^acronis_jwt\.bogus: unknown setting"):
        load_settings(None, {"CONNECTOR_ACRONIS_JWT_BOGUS": "1"})


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("jwks_url", "http://acronis.cloud/api/idp/v1/keys", "must be an absolute https:// URL"),
        ("jwks_url", "acronis.cloud/api/idp/v1/keys", "must be an absolute https:// URL"),
        ("jwks_url", "https://user:pw@acronis.cloud/keys", "must not carry credentials"),
        ("jwks_url", "https://acronis.cloud/keys#x", "must not carry credentials or a fragment"),
        ("issuers", [], "at least one"),
        ("issuers", ["https://acronis.cloud", " "], "at least one, none empty"),
        ("endpoint_ids", ["vendor.app.endpoint.v1.0"], "is not an endpoint id"),
        ("endpoint_ids", ["cti.a.p.acgw.endpoint.v1.0~"], "is not an endpoint id"),
        ("endpoint_ids", ["cti.a.p.acgw.endpoint.v2.0~vendor.app.endpoint.v2.0"], "is not an endpoint id"),
        ("endpoint_ids", ["cti.a.p.acgw.callback.v1.0~vendor.app.users_read.v1.0"], "is not an endpoint id"),
        ("endpoint_ids", ["cti.a.p.acgw.endpoint.v1.0~x\n"], "is not an endpoint id"),
        ("endpoint_ids", ["cti.a.p.acgw.endpoint.v1.0~a b"], "has a space"),
        ("endpoint_ids", ["cti.a.p.acgw.endpoint.v1.0~" + "a" * 200], "too long"),
        ("leeway", -1, "must be 0..60"),
        ("leeway", 61, "must be 0..60"),
        ("refresh_interval", 59, "must be 60..86400"),
        ("refresh_interval", 86401, "must be 60..86400"),
    ],
)
def test_acronis_jwt_rules(key: str, value: Any, error: str) -> None:
    with pytest.raises(ConfigError, match=rf"^acronis_jwt\.{key}: .*{error}"):
        load_settings(None, {}, {f"acronis_jwt.{key}": value})


@pytest.mark.parametrize(
    ("key", "value"),
    [("leeway", 0), ("leeway", 60), ("refresh_interval", 60), ("refresh_interval", 86400)],
)
def test_acronis_jwt_bounds_are_inclusive(key: str, value: int) -> None:
    assert getattr(load_settings(None, {}, {f"acronis_jwt.{key}": value}).acronis_jwt, key) == value
