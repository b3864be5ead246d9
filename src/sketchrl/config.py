"""Shared machinery for sketchrl's config dataclasses.

Every stage (model, RL, evaluation) has one dataclass that inherits :class:`Config`.
It validates itself in ``__post_init__`` (raise :class:`ConfigError` with a fix),
round-trips through JSON, and rejects unknown keys with the list of valid ones.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, TypeVar

from sketchrl.errors import ConfigError

ConfigT = TypeVar("ConfigT", bound="Config")


@dataclasses.dataclass
class Config:
    """Base class: JSON round-trip, strict key checking and ``key=value`` overrides."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls: type[ConfigT], values: dict[str, Any]) -> ConfigT:
        """Build from a mapping; unknown keys are an error that lists the valid ones."""
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ConfigError(
                f"unknown {cls.__name__} key(s) {', '.join(unknown)}; "
                f"valid keys: {', '.join(cls.field_names())}"
            )
        return cls(**values)

    def save_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load_json(cls: type[ConfigT], path: str | Path) -> ConfigT:
        try:
            values = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path}: not valid JSON ({error})") from None
        return cls.from_dict(values)

    def with_overrides(self: ConfigT, overrides: dict[str, str]) -> ConfigT:
        """Return a copy with ``key -> string value`` overrides parsed to each field's type."""
        hints = typing.get_type_hints(type(self))
        changes: dict[str, Any] = {}
        for key, text in overrides.items():
            if key not in hints:
                raise ConfigError(
                    f"unknown {type(self).__name__} key {key!r}; "
                    f"valid keys: {', '.join(self.field_names())}"
                )
            changes[key] = parse_value(text, hints[key], key)
        return dataclasses.replace(self, **changes)


def parse_value(text: str, hint: Any, key: str = "value") -> Any:
    """Parse a command-line string into the type ``hint`` (bool, int, float, str, optional)."""
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if text.lower() in ("none", "null", ""):
            return None
        return parse_value(text, args[0], key)
    try:
        if hint is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if hint in (int, float, str):
            return hint(text)
        if origin in (list, tuple):
            item = args[0] if args else str
            return [parse_value(part.strip(), item, key) for part in text.split(",") if part]
    except ValueError:
        type_name = getattr(hint, "__name__", hint)
        raise ConfigError(f"{key}={text!r} is not a valid {type_name}") from None
    return text
