"""Typed config values (endpoints, durations) and the generic loader from YAML data into
any config dataclass, with every problem reported under its dotted key path."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

__all__ = ["Duration", "Endpoint", "describe", "join", "load_section", "positive"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """``host:port`` as written in config; port 0 asks the OS for a free port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class Duration(float):
    """Seconds, written in config as ``90``, ``"500ms"``, ``"30s"``, ``"15m"`` or ``"24h"``."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


T = TypeVar("T")


def load_section(cls: type[T], data: Any, path: str, errors: list[str]) -> T | None:
    """Build dataclass ``cls`` from ``data``; append problems (with dotted paths) to ``errors``.

    Unknown keys are errors. Missing keys take the dataclass default. A dataclass may
    define ``validate(path) -> list[str]`` for checks across its own fields.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        errors.append(f"{path}: expected a mapping, got {describe(data)}")
        return None
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    known = {f.name for f in fields}
    required = {
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    for key in data:
        if key not in known:
            allowed = ", ".join(sorted(known)) or "none"
            errors.append(f"{join(path, str(key))}: unknown key (allowed: {allowed})")
    missing = sorted(required - set(data))
    for name in missing:
        errors.append(f"{join(path, name)}: required")
    if missing:
        return None
    kwargs: dict[str, Any] = {}
    failed = False
    for name in known:
        if name in data:
            before = len(errors)
            value = _convert(hints[name], data[name], join(path, name), errors)
            if len(errors) == before:
                kwargs[name] = value
            else:
                failed = True  # keep the default so the other fields are still checked
    if not required <= set(kwargs):
        return None  # a required field had the wrong type: reported above
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        errors.extend(validate(path))
    return None if failed else obj


def _convert(tp: Any, value: Any, path: str, errors: list[str]) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, path, errors)
    if origin is Literal:
        if value not in args:
            choices = " or ".join(repr(a) for a in args)
            errors.append(f"{path}: {value!r} must be {choices}")
        return value
    if origin is list:
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {describe(value)}")
            return []
        return [_convert(args[0], v, f"{path}[{i}]", errors) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            errors.append(f"{path}: expected a mapping, got {describe(value)}")
            return {}
        return {str(k): _convert(args[1], v, join(path, str(k)), errors) for k, v in value.items()}
    if tp is Endpoint:
        return _endpoint(value, path, errors)
    if tp is Duration:
        return _duration(value, path, errors)
    if dataclasses.is_dataclass(tp):
        return load_section(tp, value, path, errors)  # type: ignore[arg-type]
    if tp is bool:
        if not isinstance(value, bool):
            errors.append(f"{path}: expected true or false, got {describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{path}: expected an integer, got {describe(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append(f"{path}: expected a number, got {describe(value)}")
            return value
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {describe(value)}")
        return value
    if tp is Any:
        return value
    raise TypeError(f"config field type {tp!r} at {path} is not supported")


def _endpoint(value: Any, path: str, errors: list[str]) -> Endpoint:
    text = str(value)
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        errors.append(f"{path}: {text!r} is not an endpoint (expected host:port)")
        return Endpoint("127.0.0.1", 0)
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        errors.append(f"{path}: {port_text!r} is not a port (expected 0-65535)")
        return Endpoint(host, 0)
    return Endpoint(host.strip("[]"), port)


def _duration(value: Any, path: str, errors: list[str]) -> Duration:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Duration(value)
    match = _DURATION.match(str(value))
    if match is None:
        errors.append(f"{path}: {value!r} is not a duration (expected e.g. 30s, 15m, 24h)")
        return Duration(0)
    return Duration(float(match.group(1)) * _DURATION_UNITS[match.group(2)])


def positive(path: str, name: str, value: float) -> list[str]:
    """The error for a limit that must be greater than 0, if it is not."""
    return [] if value > 0 else [f"{path}.{name}: {value!r} must be greater than 0"]


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{value!r}"
