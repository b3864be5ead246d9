"""Rewards by name: ``REWARDS`` and ``build_reward(name, options, device)``."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from sketchrl.config import UNION_TYPES, parse_value
from sketchrl.errors import ConfigError
from sketchrl.rewards.base import Reward, WeightedSum
from sketchrl.rewards.classifier import ClassifierReward
from sketchrl.rewards.clip import CLIPReward
from sketchrl.rewards.realism import RealismReward
from sketchrl.rewards.ssim import SSIMReward


def build_weighted_sum(
    terms: Sequence[Mapping[str, Any]], device: str | torch.device | None = None
) -> WeightedSum:
    """A weighted sum from ``terms``: ``[{"name": ..., "weight": ..., "options": {...}}, ...]``.

    In TOML: ``[[reward_options.terms]]`` tables with ``name``, ``weight`` and ``options``.
    """
    if not terms:
        raise ConfigError("weighted_sum needs terms = [{name, weight, options}, ...]")
    rewards, weights = [], []
    for term in terms:
        unknown = sorted(set(term) - {"name", "weight", "options"})
        if "name" not in term or unknown:
            raise ConfigError(
                f"weighted_sum term {dict(term)!r}: give name, weight (default 1) and options"
            )
        rewards.append(build_reward(term["name"], dict(term.get("options", {})), device))
        weights.append(float(term.get("weight", 1.0)))
    return WeightedSum(rewards, weights)


#: name -> factory(**options, device=...) returning a Reward.
REWARDS: dict[str, Callable[..., Reward]] = {
    "ssim": SSIMReward,
    "clip": CLIPReward,
    "classifier": ClassifierReward,
    "realism": RealismReward,
    "weighted_sum": build_weighted_sum,
}


def reward_options(name: str) -> dict[str, Any]:
    """The options of reward ``name`` with their defaults (``inspect.Parameter.empty`` if none)."""
    factory = _factory(name)
    parameters = inspect.signature(factory).parameters
    return {
        key: parameter.default
        for key, parameter in parameters.items()
        if key not in ("self", "device") and parameter.kind is not parameter.VAR_KEYWORD
    }


def _factory(name: str) -> Callable[..., Reward]:
    if name not in REWARDS:
        raise ConfigError(f"unknown reward {name!r}; valid rewards: {', '.join(sorted(REWARDS))}")
    return REWARDS[name]


def _parse_strings(factory: Callable[..., Reward], options: dict[str, Any]) -> dict[str, Any]:
    """Parse string values given for non-string options (e.g. from the command line)."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    hints = typing.get_type_hints(target)
    parsed = dict(options)
    for key, value in options.items():
        hint = hints.get(key)
        if isinstance(value, str) and hint is not None and hint is not str:
            is_union = typing.get_origin(hint) in UNION_TYPES
            if not (is_union and str in typing.get_args(hint)):  # `str | None` stays a string
                parsed[key] = parse_value(value, _simplify_hint(hint), key)
    return parsed


def _simplify_hint(hint: Any) -> Any:
    """``Sequence[str]`` -> ``list[str]`` so that ``parse_value`` splits it on commas."""
    origin = typing.get_origin(hint)
    if origin in (Sequence, typing.Sequence, list, tuple):
        return list[str]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if args and len(args) < len(typing.get_args(hint)):  # Optional[...]
        return _simplify_hint(args[0]) | None
    return hint


def build_reward(
    name: str, options: Mapping[str, Any] | None = None, device: str | torch.device | None = None
) -> Reward:
    """Build reward ``name`` with ``options``; unknown names or options are a ConfigError."""
    factory = _factory(name)
    options = dict(options or {})
    valid = reward_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for reward {name!r}; "
            f"valid options: {', '.join(valid)}"
        )
    missing = [k for k, default in valid.items() if default is inspect.Parameter.empty
               and k not in options]
    if missing:
        raise ConfigError(f"reward {name!r} needs option(s): {', '.join(missing)}")
    return factory(**_parse_strings(factory, options), device=device)
