"""RL algorithms by name: ``reinforce`` (the paper), ``grpo`` and ``ppo``.

An algorithm is one module of this package: a subclass of :class:`Algorithm` decorated with
``@register("name")``, implementing ``prepare`` (advantages of a scored batch) and
``policy_loss``. Sampling, scoring, the KL and entropy terms, optimisation, checkpoints and logs
are shared (:mod:`sketchrl.rl.trainer`), so a new algorithm touches no other file.
"""

from __future__ import annotations

import importlib
import pkgutil

from sketchrl.errors import ConfigError
from sketchrl.rl.algorithms.base import ALGORITHMS, Algorithm, register

__all__ = ["ALGORITHMS", "Algorithm", "algorithm_names", "get_algorithm", "register"]

_discovered = False


def _discover() -> None:
    """Import every module of this package so that their ``@register`` decorators run."""
    global _discovered
    if not _discovered:
        for module in pkgutil.iter_modules(__path__):
            if not module.name.startswith("_") and module.name != "base":
                importlib.import_module(f"{__name__}.{module.name}")
        _discovered = True


def algorithm_names() -> tuple[str, ...]:
    """Names the ``algorithm`` config key accepts."""
    _discover()
    return tuple(sorted(ALGORITHMS))


def get_algorithm(name: str) -> type[Algorithm]:
    """The algorithm class registered as ``name`` (ConfigError listing the valid ones)."""
    names = algorithm_names()
    if name not in ALGORITHMS:
        raise ConfigError(f"unknown algorithm {name!r}; valid: {', '.join(names)}")
    return ALGORITHMS[name]
