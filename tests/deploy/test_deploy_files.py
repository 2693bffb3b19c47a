"""The files in deploy/ keep their promises without any daemon: env template, systemd units, proxy configs.

test_nginx_squid.py runs nginx and squid for real (where installed); these checks run everywhere.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from endpoint.config.settings import load_settings, section_types
from endpoint.web.server import DRAIN_TIMEOUT
from tests.deploy.proxies import NGINX_CONF, REPO, SQUID_CONF, find_binary

DEPLOY = REPO / "deploy"
ENV_EXAMPLE = DEPLOY / "connector.env.example"
UNITS = {
    "serve": DEPLOY / "systemd" / "connector-endpoint.service",
    "push": DEPLOY / "systemd" / "connector-outbox.service",
}
NOT_SETTINGS = {
    "CONNECTOR_CONFIG",
    "CONNECTOR_ADMIN_PASSWORD",
}  # read by the CLI and bootstrap, not the loader


def override_names() -> set[str]:
    """CONNECTOR_<SECTION>_<KEY> for every setting the environment can carry (not tables of tables)."""
    names = set()
    for section, cls in section_types().items():
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            args = typing.get_args(hints[field.name])
            if args and dataclasses.is_dataclass(args[0]):
                continue  # [[acronis.datacenters]]
            names.add(f"CONNECTOR_{section}_{field.name}".upper())
    return names


def env_lines() -> tuple[set[str], dict[str, str]]:
    """(every variable named, commented or not; the active assignments)."""
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    named = set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))
    active = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", text, re.MULTILINE))
    return named, active


def test_env_example_lists_every_override_and_nothing_stale() -> None:
    named, _ = env_lines()
    listed = {name for name in named if name.startswith("CONNECTOR_")} - NOT_SETTINGS
    assert sorted(override_names() - listed) == []
    assert sorted(listed - override_names()) == []


def test_env_example_names_every_secret_and_loads_with_the_example_config() -> None:
    _, active = env_lines()
    documented = (DEPLOY / "config.example.toml").read_text() + (DEPLOY / "NETWORK.md").read_text()
    secrets = set(re.findall(r'^#? ?\w+_env = "([A-Z][A-Z0-9_]*)"', documented, re.MULTILINE))
    assert secrets and sorted(secrets - set(active)) == []
    # A secret named CONNECTOR_<SECTION>_... would be read as a setting and fail here.
    load_settings(DEPLOY / "config.example.toml", active)


def unit(path: Path) -> list[tuple[str, str]]:
    """(key, value) pairs of a unit file in order; repeated keys stay repeated."""
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            pairs.append((key.strip(), value.strip()))
    return pairs


@pytest.mark.parametrize("command", sorted(UNITS))
def test_units_are_hardened_and_stop_gracefully(command: str) -> None:
    settings = dict(unit(UNITS[command]))
    exec_start = settings["ExecStart"].split()
    assert exec_start[1:6] == ["-m", "endpoint", command, "--config", "/etc/connector/connector.toml"]
    assert settings["EnvironmentFile"] == "/etc/connector/connector.env"
    assert settings["User"] == "connector" and settings["ReadWritePaths"] == "/var/lib/connector"
    for key, value in {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "CapabilityBoundingSet": "",
        "KillSignal": "SIGTERM",
    }.items():
        assert settings[key] == value, key
    timeout = float(settings["TimeoutStopSec"].removesuffix("s"))
    if command == "serve":
        assert "--workers" in exec_start
        assert timeout > 2 * DRAIN_TIMEOUT  # in-flight requests, then open connections, each bounded


def test_unit_commands_exist() -> None:
    for command, flag in (("serve", "--workers"), ("push", "--progress")):
        result = subprocess.run(
            [sys.executable, "-m", "endpoint", command, "--help"], cwd=REPO, capture_output=True, text=True
        )
        assert result.returncode == 0 and flag in result.stdout


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = find_binary("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    copies = []
    for path in UNITS.values():
        copy = tmp_path / path.name
        copy.write_text(path.read_text().replace("/opt/connector/venv/bin/python", sys.executable))
        copies.append(str(copy))
    result = subprocess.run([analyze, "verify", *copies], capture_output=True, text=True, timeout=60)
    about_ours = [line for line in (result.stdout + result.stderr).splitlines() if str(tmp_path) in line]
    assert about_ours == []


def directives(path: Path) -> list[str]:
    lines = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line]


def test_nginx_forwards_the_uri_unchanged_and_overwrites_forwarding_headers() -> None:
    lines = directives(NGINX_CONF)
    assert [line for line in lines if line.startswith("proxy_pass ")] == [
        "proxy_pass http://connector_endpoint;"
    ]
    for required in (
        "merge_slashes off;",
        "client_max_body_size 1m;",
        "ssl_protocols TLSv1.3;",
        "proxy_set_header X-Forwarded-For $remote_addr;",
        "proxy_next_upstream off;",
    ):
        assert required in lines
    text = "\n".join(lines)
    for forbidden in (
        "$proxy_add_x_forwarded_for",
        "$http_authorization",
        "$http_x_cyberapp_auth",
        "log_format",
    ):
        assert forbidden not in text


def test_squid_denies_by_default_and_never_logs_headers() -> None:
    lines = directives(SQUID_CONF)
    access = [line for line in lines if line.startswith("http_access ")]
    assert access[0] == "http_access deny !CONNECT" and access[-1] == "http_access deny all"
    assert all(line.startswith("http_access deny") for line in access if "connector_user" in line)
    for required in ("log_mime_hdrs off", "cache deny all", "strip_query_terms on"):
        assert required in lines
