"""The service's settings: every section in one Settings; load_settings (file, environment, flags)."""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from endpoint.aps.settings import ApsSettings
from endpoint.auth.jwt_settings import AcronisJwtSettings, check_callback_auth
from endpoint.callbacks.settings import CallbacksSettings
from endpoint.config.loader import ConfigError, build_section
from endpoint.config.sections import AuthSettings, EndpointSettings, LoggingSettings, ServerSettings
from endpoint.observability.metrics import MetricsSettings
from endpoint.outbox.settings import AcronisSettings, OutboxSettings
from models.db import DatabaseSettings
from proxy.session import ProxySettings

ENV_PREFIX = "CONNECTOR_"


@dataclass(frozen=True, slots=True)
class Settings:
    endpoint: EndpointSettings
    server: ServerSettings = field(default_factory=ServerSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    proxy: ProxySettings = field(default_factory=ProxySettings)
    acronis: AcronisSettings = field(default_factory=AcronisSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    aps: ApsSettings = field(default_factory=ApsSettings)
    acronis_jwt: AcronisJwtSettings = field(default_factory=AcronisJwtSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    callbacks: CallbacksSettings = field(default_factory=CallbacksSettings)

    def __post_init__(self) -> None:
        if problem := check_callback_auth(self.endpoint.callback_auth, self.acronis_jwt):
            raise ConfigError(problem)


def section_types() -> dict[str, type[Any]]:
    """Section name -> its dataclass, in declaration order."""
    hints = typing.get_type_hints(Settings)
    return {f.name: hints[f.name] for f in dataclasses.fields(Settings)}


def load_settings(
    path: str | os.PathLike[str] | None,
    environ: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings from a TOML file, then ``CONNECTOR_<SECTION>_<KEY>`` variables, then flag overrides.

    ``overrides`` maps dotted keys (``"endpoint.public_base_url"``) to values. Secrets are never read
    here: sections name the environment variable that holds each one (``*_env`` settings).
    :raise ConfigError: naming the offending key path.
    """
    sections = section_types()
    raw: dict[str, dict[str, Any]] = {name: {} for name in sections}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                document = tomllib.load(fh)
        except OSError as e:
            raise ConfigError(f"config file {os.fspath(path)!r}: {e.strerror}") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {os.fspath(path)!r}: {e}") from e
        for name, table in document.items():
            if name not in sections:
                raise ConfigError(f"{name}: unknown section (known: {', '.join(sections)})")
            if not isinstance(table, dict):
                raise ConfigError(f"{name}: must be a table")
            raw[name].update(table)
    from_environment: dict[tuple[str, str], str] = {}
    for var, value in environ.items():
        if not var.startswith(ENV_PREFIX):
            continue
        # The longest section name wins: CONNECTOR_ACRONIS_JWT_LEEWAY is acronis_jwt.leeway, not acronis.*
        name = var[len(ENV_PREFIX) :].lower()
        section = max((known for known in sections if name.startswith(known + "_")), key=len, default="")
        key = name[len(section) + 1 :]
        if section and key:
            raw[section][key] = value
            from_environment[(section, key)] = var
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        if section not in sections or not key:
            raise ConfigError(f"{dotted}: unknown setting")
        raw[section][key] = value
    for (section, key), var in from_environment.items():
        known = {field.name for field in dataclasses.fields(sections[section])}
        if key not in known:
            # Typically a secret variable named like an override (CONNECTOR_PROXY_PASSWORD): say so.
            raise ConfigError(
                f"{section}.{key}: unknown setting, from the environment variable {var}; variables named "
                f"{ENV_PREFIX}<SECTION>_<KEY> override settings, so give secret variables another name"
            )
    built = {name: build_section(cls, name, raw[name]) for name, cls in sections.items()}
    return Settings(**built)
