"""Shared machinery for sketchrl's config dataclasses.

Every stage (model, RL, evaluation) has one dataclass that inherits :class:`Config`.
It validates itself in ``__post_init__`` (raise :class:`ConfigError` with a fix),
round-trips through JSON, and rejects unknown keys with the list of valid ones.
:meth:`Config.from_dict` and :meth:`Config.with_overrides` also check every value against its
field's type hint (bool, int, float (an int is accepted), str, ``X | None``, ``list[X]``,
``tuple[X, ...]``, ``dict[K, V]``, a nested Config), so that a TOML or JSON file with
``episodes = "lots"``, ``seed = true`` or ``episodes = 5000.7`` is a one-line ConfigError.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import numbers
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from sketchrl.errors import ConfigError

ConfigT = TypeVar("ConfigT", bound="Config")
UNION_TYPES = (typing.Union, types.UnionType)


@dataclasses.dataclass
class Config:
    """Base class: JSON round-trip, strict key and type checking, ``key=value`` overrides."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        """Field name -> resolved type hint."""
        return _field_types(cls)

    @classmethod
    def from_dict(cls: type[ConfigT], values: dict[str, Any]) -> ConfigT:
        """Build from a mapping; unknown keys or values of the wrong type are a ConfigError."""
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"{cls.__name__}: expected a table of key = value settings, got "
                f"{_describe(values)}"
            )
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ConfigError(
                f"unknown {cls.__name__} key(s) {', '.join(map(str, unknown))}; "
                f"valid keys: {', '.join(cls.field_names())}"
            )
        hints = cls.field_types()
        checked = {
            key: check_value(value, hints[key], f"{cls.__name__}.{key}")
            for key, value in values.items()
        }
        return cls(**checked)

    def save_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load_json(cls: type[ConfigT], path: str | Path) -> ConfigT:
        try:
            values = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path}: not valid JSON ({error})") from None
        return cls.from_dict(values)

    def with_overrides(self: ConfigT, overrides: dict[str, str]) -> ConfigT:
        """Return a copy with ``key -> string value`` overrides parsed to each field's type."""
        hints = self.field_types()
        changes: dict[str, Any] = {}
        for key, text in overrides.items():
            if key not in hints:
                raise ConfigError(
                    f"unknown {type(self).__name__} key {key!r}; "
                    f"valid keys: {', '.join(self.field_names())}"
                )
            value = parse_value(text, hints[key], key) if isinstance(text, str) else text
            changes[key] = check_value(value, hints[key], key)
        return dataclasses.replace(self, **changes)


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def _describe(value: Any) -> str:
    """``'lots' (a string)`` - a short repr and the kind of value, for error messages."""
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", tuple: "a list", dict: "a table"}.get(type(value), type(value).__name__)
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{shown} ({kind})"


def _type_name(hint: Any) -> str:
    """How a type hint is written in an error message."""
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
    if hint in names:
        return names[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in UNION_TYPES:
        return " or ".join("none" if a is type(None) else _type_name(a) for a in args)
    if origin in (list, tuple):
        return f"a list ({_type_name(args[0])} each)" if args else "a list"
    if origin is dict or hint is dict:
        return "a table (key = value)"
    return getattr(hint, "__name__", str(hint))


def check_value(value: Any, hint: Any, key: str = "value") -> Any:
    """``value`` checked against the type ``hint`` (an int for a float field becomes a float, an
    integral float for an int field an int, a dict for a nested Config that Config); ConfigError
    on a mismatch. Hints it does not know (``Any``, other classes) accept any value."""
    try:
        return _check(value, hint)
    except _Mismatch:
        raise ConfigError(f"{key} = {_describe(value)}: expected {_type_name(hint)}") from None


class _Mismatch(Exception):
    pass


def _check(value: Any, hint: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object:
        return value
    if origin in UNION_TYPES:
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _check(value, arg)
            except _Mismatch:
                continue
        raise _Mismatch
    if hint in (bool, int, float, str):
        return _check_scalar(value, hint)
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, list | tuple):
            raise _Mismatch
        item = args[0] if len(args) == 1 or (len(args) == 2 and args[1] is Ellipsis) else Any
        items = [_check(element, item) for element in value]
        return tuple(items) if (origin or hint) is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise _Mismatch
        item = args[1] if len(args) == 2 else Any
        return {name: _check(element, item) for name, element in value.items()}
    if isinstance(hint, type) and issubclass(hint, Config):
        if isinstance(value, dict):
            return hint.from_dict(value)
        if not isinstance(value, hint):
            raise _Mismatch
        return value
    if isinstance(hint, type) and hint is Path:
        if not isinstance(value, str | Path):
            raise _Mismatch
        return value
    return value


def _check_scalar(value: Any, hint: type) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise _Mismatch
        return value
    if isinstance(value, bool):
        raise _Mismatch
    if hint is int:
        if isinstance(value, numbers.Integral):  # numpy integers too
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _Mismatch
    if hint is float:
        if isinstance(value, numbers.Real):
            return float(value)
        raise _Mismatch
    if not isinstance(value, str):
        raise _Mismatch
    return value


#: Words that mean false, in a command-line value or an environment switch (any case).
OFF_WORDS = ("0", "false", "no", "off")


def switched_on(variable: str) -> bool:
    """An environment switch that is on unless set to one of :data:`OFF_WORDS`."""
    return os.environ.get(variable, "1").strip().lower() not in OFF_WORDS


def parse_value(text: str, hint: Any, key: str = "value") -> Any:
    """Parse a command-line string into the type ``hint`` (bool, int, float, str, optional)."""
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin in UNION_TYPES:
        if text.lower() in ("none", "null", ""):
            return None
        return parse_value(text, args[0], key)
    try:
        if hint is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in OFF_WORDS:
                return False
            raise ValueError(text)
        if hint is str and len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
            return text[1:-1]  # TOML-quoted, as in the experiment file: key="value"
        if hint in (int, float, str):
            return hint(text)
        if origin in (list, tuple):
            item = args[0] if args else str
            return [parse_value(part.strip(), item, key) for part in text.split(",") if part]
    except ValueError:
        type_name = getattr(hint, "__name__", hint)
        raise ConfigError(f"{key}={text!r} is not a valid {type_name}") from None
    return text
