"""Run a study's steps: in this process, in a local process pool, or on Ray.

A study is data: a list of `Step` (a key, a module-level function and its kwargs, a ``done``
check, deps, cpus/gpus). An `Executor` runs the steps that are not done, each after its deps,
and returns their wall times::

    from sketchrl.reproduce.executors import Step, get_executor

    steps = [Step("a", make_a, {"out": "out/a"}, done="out/a/result.json"),
             Step("b", make_b, {"src": "out/a", "out": "out/b"}, deps=["a"], cpus=2)]
    result = get_executor("local", workers=2).run(steps)
    result.timings  # {"a": 1.2, "b": 3.4}

A new executor is one module in this package whose class is decorated with
``@register("name")``; `get_executor` finds it without any other file changing.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

from sketchrl.errors import ConfigError
from sketchrl.reproduce.executors.base import (
    EXECUTORS,
    Executor,
    RemoteTraceback,
    RunResult,
    Step,
    StepError,
    register,
)

__all__ = ["EXECUTORS", "Executor", "RemoteTraceback", "RunResult", "Step", "StepError",
           "executor_names", "get_executor", "register"]

_discovered = False


def _discover() -> None:
    """Import every module of this package so that their ``@register`` decorators run."""
    global _discovered
    if not _discovered:
        for module in pkgutil.iter_modules(__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{__name__}.{module.name}")
        _discovered = True


def executor_names() -> list[str]:
    """Names `get_executor` accepts."""
    _discover()
    return sorted(EXECUTORS)


def get_executor(name: str, **options: Any) -> Executor:
    """The executor registered as ``name``, built with ``options`` (None values are dropped).

    Raises ConfigError for an unknown name or an option that executor does not take.
    """
    names = executor_names()
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}; choose one of: {', '.join(names)}")
    cls = EXECUTORS[name]
    options = {key: value for key, value in options.items() if value is not None}
    accepted = [p for p in inspect.signature(cls).parameters if p not in ("args", "kwargs")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(f"the {name} executor takes no option {', '.join(unknown)}; "
                          f"its options: {', '.join(accepted)}")
    return cls(**options)
