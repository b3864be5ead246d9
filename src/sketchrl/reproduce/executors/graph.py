"""The dependency graph of a study's steps: validation, order, and what may start next."""

from __future__ import annotations

from collections.abc import Sequence

from sketchrl.errors import ConfigError
from sketchrl.reproduce.executors.base import Step


class StepGraph:
    """Steps checked (unique keys, known deps, no cycle) and ordered, plus their run state.

    Steps whose ``done`` check holds at construction count as finished (``skipped``). An
    executor asks `ready` for the steps whose deps have all finished, then calls `start`,
    `finish` (or `retry` when its worker died) for each.
    """

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps: dict[str, Step] = {}
        for step in steps:
            if not isinstance(step, Step):
                raise ConfigError(f"executors run Step objects, got {type(step).__name__}")
            if step.key in self.steps:
                raise ConfigError(f"two steps have the key {step.key!r}; keys must be unique")
            self.steps[step.key] = step
        for step in steps:
            unknown = [dep for dep in step.deps if dep not in self.steps]
            if unknown:
                raise ConfigError(
                    f"step {step.key} depends on unknown step(s) {', '.join(unknown)}; "
                    "add them to the study or drop the dependency"
                )
        self.order: list[Step] = _topological_order(list(self.steps.values()))
        self.skipped: list[str] = [step.key for step in self.order if step.is_done()]
        self._finished: set[str] = set(self.skipped)
        self._started: set[str] = set()

    def ready(self) -> list[Step]:
        """Steps not started whose deps have all finished, in the study's order."""
        return [
            step for step in self.order
            if step.key not in self._started and step.key not in self._finished
            and all(dep in self._finished for dep in step.deps)
        ]

    def start(self, key: str) -> None:
        self._started.add(key)

    def finish(self, key: str) -> None:
        self._started.discard(key)
        self._finished.add(key)

    def retry(self, key: str) -> None:
        """The step's worker died: make it ready again."""
        self._started.discard(key)

    @property
    def all_finished(self) -> bool:
        return len(self._finished) == len(self.steps)

    def __len__(self) -> int:
        return len(self.steps)


def _topological_order(steps: list[Step]) -> list[Step]:
    """The given order, except that a step comes after its deps (stable topological sort)."""
    placed: set[str] = set()
    order: list[Step] = []
    remaining = list(steps)
    while remaining:
        index = next((i for i, step in enumerate(remaining)
                      if all(dep in placed for dep in step.deps)), None)
        if index is None:
            cycle = ", ".join(step.key for step in remaining)
            raise ConfigError(f"steps {cycle} are in (or wait on) a dependency cycle; break it")
        step = remaining.pop(index)
        placed.add(step.key)
        order.append(step)
    return order
