"""Typed loading of settings sections: TOML tables + environment + flags coerced into frozen dataclasses."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any


class ConfigError(Exception):
    """A setting is missing, unknown or invalid; the message names its key path (``section.key``)."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def build_section(cls: type[Any], section: str, values: Mapping[str, Any]) -> Any:
    """Coerce ``values`` into dataclass ``cls``; every problem becomes a ConfigError naming the key."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{section}.{unknown[0]}: unknown setting (known: {', '.join(sorted(fields))})")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, raw in values.items():
        try:
            kwargs[name] = coerce(raw, hints[name], f"{section}.{name}")
        except ConfigError:
            raise
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{section}.{name}: {e}") from e
    for name, field in fields.items():
        if (
            name not in kwargs
            and field.default is dataclasses.MISSING
            and (field.default_factory is dataclasses.MISSING)
        ):
            raise ConfigError(f"{section}.{name}: required setting is missing")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        # Section validators raise ValueError("key: reason"); prefix the section to get the full path.
        raise ConfigError(f"{section}.{e}") from e


def coerce(raw: Any, hint: Any, path: str = "") -> Any:
    """Convert a TOML value or an environment string to the annotated type.

    ``path`` is the key path of ``raw`` (``acronis.datacenters[0]``), so errors inside nested tables
    name where they are. :raise ConfigError: from a nested table. :raise ValueError, TypeError: otherwise.
    """
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none", "null")):
            if type(None) in args:
                return None
        return coerce(raw, inner[0], path)
    if origin is tuple:
        items = _as_list(raw)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(item, args[0], f"{path}[{i}]") for i, item in enumerate(items))
        if len(items) != len(args):
            raise ValueError(f"expected {len(args)} values, got {len(items)}")
        return tuple(
            coerce(item, arg, f"{path}[{i}]") for i, (item, arg) in enumerate(zip(items, args, strict=True))
        )
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(raw, Mapping):
            raise ValueError("expected a table")
        return build_section(hint, path or hint.__name__, raw)
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"expected true or false, got {raw!r}")
    if hint is int:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError(f"expected an integer, got {raw!r}")
        return int(str(raw).strip()) if isinstance(raw, str) else int(raw)
    if hint is float:
        if isinstance(raw, bool):
            raise ValueError(f"expected a number, got {raw!r}")
        return float(raw)
    if hint is str:
        if not isinstance(raw, str | int | float):
            raise ValueError(f"expected a string, got {type(raw).__name__}")
        return str(raw)
    raise TypeError(f"unsupported setting type {hint!r}")


def _as_list(raw: Any) -> list[Any]:
    if isinstance(raw, list | tuple):
        return list(raw)
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(",") if part.strip()]
    raise ValueError(f"expected a list, got {type(raw).__name__}")
