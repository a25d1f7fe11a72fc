"""Load plain YAML data into typed dataclasses, with errors that name the YAML key path.

A tiny, dependency-free validator: it knows the handful of types our configs use
(bool, int, float, str, Literal, Optional, list, dict, nested dataclasses) and nothing else.
Every error message carries the dotted key path (``robot.velocity_limits[3]``) and echoes the
bad value, so an operator can fix the YAML without reading code.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

__all__ = ["ConfigError", "from_dict", "load_yaml_file"]

T = TypeVar("T")

# Numbers in exponent form that YAML 1.1 (PyYAML) leaves as strings: 1e-3, 3E+4, -2.5e-1.
_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type.

    ``key_path`` is the dotted path into the YAML document, e.g. ``cameras[1].fps``.
    """

    def __init__(self, key_path: str, message: str, source: str | None = None) -> None:
        self.key_path = key_path or "<root>"
        self.message = message
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{self.key_path}: {message}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_optional(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp)


def _convert(tp: Any, value: Any, path: str) -> Any:
    """Check ``value`` against type ``tp`` and return it converted (dataclasses built)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        members = get_args(tp)
        if value is None and type(None) in members:
            return None
        for member in members:
            if member is type(None):
                continue
            try:
                return _convert(member, value, path)
            except ConfigError:
                continue
        raise ConfigError(path, f"value {_describe(value)} matches none of {tp}")
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(path, f"must be one of {list(allowed)}, got {_describe(value)}")
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _build_dataclass(tp, value, path)
    if origin is list:
        (item_type,) = get_args(tp) or (Any,)
        if not isinstance(value, list):
            raise ConfigError(path, f"expected a list, got {_describe(value)}")
        return [_convert(item_type, item, f"{path}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        key_type, value_type = get_args(tp) or (str, Any)
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected a mapping, got {_describe(value)}")
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(path, f"keys must be strings, got {_describe(key)}")
            out[key] = _convert(value_type, item, _join(path, key))
        return out
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"expected an integer, got {_describe(value)}")
        return value
    if tp is float:
        # PyYAML follows YAML 1.1, where 1e-3 (no dot) is a string; YAML 1.2 and every
        # user reads it as a number.
        if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
            return float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(path, f"expected a number, got {_describe(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"expected a string, got {_describe(value)}")
        return value
    raise TypeError(f"config type {tp!r} at {path} is not supported by the loader")


def _build_dataclass(cls: type[T], data: Any, path: str) -> T:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, f"expected a mapping for {cls.__name__}, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            _join(path, str(unknown[0])),
            f"unknown key (allowed here: {', '.join(sorted(fields))})",
        )
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        key_path = _join(path, name)
        if name not in data:
            has_default = (
                field.default is not dataclasses.MISSING
                or field.default_factory is not dataclasses.MISSING
            )
            if not has_default:
                raise ConfigError(key_path, "missing required value")
            continue
        value = data[name]
        if value is None and not _is_optional(hints[name]):
            raise ConfigError(key_path, "value is empty (null) but required")
        kwargs[name] = _convert(hints[name], value, key_path)
    try:
        instance = cls(**kwargs)
    except ConfigError as exc:
        # __post_init__ checks raise with a path relative to this object: make it absolute.
        relative = "" if exc.key_path == "<root>" else exc.key_path
        raise ConfigError(_join(path, relative) if relative else path, exc.message) from None
    return instance


def from_dict(cls: type[T], data: Any, *, source: str | None = None) -> T:
    """Build dataclass ``cls`` from plain YAML data; raise ConfigError naming the key path."""
    try:
        return _build_dataclass(cls, data, "")
    except ConfigError as exc:
        if source and exc.source is None:
            raise ConfigError(exc.key_path, exc.message, source) from None
        raise


def load_yaml_file(path: str | Path) -> Any:
    """Read a YAML file; syntax errors become ConfigError naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read config file: {exc.strerror}", str(path)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError("", f"malformed YAML: {where}{problem}", str(path)) from None
