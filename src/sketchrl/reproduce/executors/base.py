"""What every executor shares: the `Step` type, the `Executor` interface and its registry.

A study is a list of steps; an executor runs them in dependency order and knows nothing of what
they compute. A step is idempotent and resumable on its own (it skips work whose output exists
and resumes from its own checkpoint), so an executor may run a step again after its worker died.
"""

from __future__ import annotations

import abc
import dataclasses
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeVar

from sketchrl.errors import ConfigError

if TYPE_CHECKING:
    from sketchrl.reproduce.executors.graph import StepGraph
    from sketchrl.reproduce.executors.progress import StudyProgress

KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                   "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")

StepCallback = Callable[[str, float], None]
"""Called in the driver as ``callback(step_key, wall_seconds)`` when a step finishes."""


@dataclasses.dataclass(frozen=True)
class Step:
    """One idempotent, resumable unit of a study.

    Attributes:
        key: unique, filesystem-safe name (letters, digits, ``.``, ``_``, ``-``; at most 128).
        fn: a module-level function (workers import it by name), called as ``fn(**kwargs)``;
            its return value is discarded (steps hand results to each other through files).
        kwargs: picklable keyword arguments of ``fn``.
        done: when the step has nothing left to do: a path (done when it exists; the step writes
            it last), a callable returning True (evaluated in the driver), or None (always run;
            the step itself skips what it already has).
        deps: keys of the steps that must finish before this one starts.
        cpus, gpus: resources the step uses (Ray reserves them; the local executor gives every
            step ``cores // workers`` threads whatever it asks).
    """

    key: str
    fn: Callable[..., Any]
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    done: str | os.PathLike[str] | Callable[[], bool] | None = None
    deps: Sequence[str] = ()
    cpus: float = 1.0
    gpus: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not KEY_PATTERN.fullmatch(self.key):
            raise ConfigError(
                f"step key {self.key!r} is not filesystem-safe; use 1-128 letters, digits, "
                "'.', '_' or '-', starting with a letter or digit"
            )
        qualname = getattr(self.fn, "__qualname__", "")
        if not callable(self.fn) or "<lambda>" in qualname or "<locals>" in qualname:
            raise ConfigError(
                f"step {self.key}: fn must be a module-level function (got {self.fn!r}) so that "
                "worker processes can import it"
            )
        if self.cpus < 0 or self.gpus < 0:
            raise ConfigError(f"step {self.key}: cpus and gpus must be >= 0")
        deps = (self.deps,) if isinstance(self.deps, str) else tuple(self.deps)
        object.__setattr__(self, "deps", deps)
        object.__setattr__(self, "kwargs", dict(self.kwargs))

    def is_done(self) -> bool:
        """Whether the step's ``done`` check says it has nothing left to do."""
        if self.done is None:
            return False
        if callable(self.done):
            return bool(self.done())
        return Path(self.done).exists()


@dataclasses.dataclass
class RunResult:
    """What one `Executor.run` did.

    ``timings`` maps each step run by this call to its wall time in seconds (its last, finishing
    attempt), in the order they finished; ``skipped`` lists the steps already done beforehand.
    """

    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    skipped: list[str] = dataclasses.field(default_factory=list)


class StepError(RuntimeError):
    """A step could not finish for a reason other than its own (picklable) exception."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"step {key}: {message}")
        self.key = key


class RemoteTraceback(Exception):
    """The traceback of a step that failed in another process (raised as the cause)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def raise_step_failure(key: str, exc: BaseException | None, traceback_text: str) -> NoReturn:
    """Re-raise a step's exception in the driver, its remote traceback chained as the cause."""
    cause = RemoteTraceback(traceback_text)
    if exc is None:
        last = traceback_text.strip().splitlines()[-1] if traceback_text.strip() else "failed"
        raise StepError(key, last) from cause
    if hasattr(exc, "add_note"):
        exc.add_note(f"(in step {key})")
    raise exc from cause


def available_cores() -> int:
    """CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def limit_threads(threads: int) -> None:
    """Make this process's math libraries use ``threads`` threads (before or after torch loads)."""
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


class Executor(abc.ABC):
    """Runs a study's steps in dependency order; subclasses implement `_execute`.

    Use ``executor.run(steps)`` (starts and stops whatever the executor needs), or
    ``with executor: executor.run(a); executor.run(b)`` to share that start-up between runs.
    """

    name: ClassVar[str] = ""
    done_hint: ClassVar[str] = ""

    def __init__(self, *, progress: bool = True) -> None:
        self.progress = progress

    def run(self, steps: Sequence[Step], *, on_step_done: StepCallback | None = None) -> RunResult:
        """Run every step that is not done yet, each after its deps; skip the done ones.

        A step that raises stops the study with that exception (steps already finished stay
        finished). ``on_step_done(key, seconds)`` is called in this process after each step.
        """
        from sketchrl.reproduce.executors.graph import StepGraph
        from sketchrl.reproduce.executors.progress import StudyProgress

        graph = StepGraph(steps)
        with StudyProgress(graph, self.progress, on_step_done, self.done_hint) as report:
            if not graph.all_finished:
                self._execute(graph, report)
            return report.result

    @abc.abstractmethod
    def _execute(self, graph: StepGraph, report: StudyProgress) -> None:
        """Run the graph's unfinished steps; call ``report.finished(step, seconds)`` for each."""

    def close(self) -> None:  # noqa: B027 (nothing to release by default)
        """Release what the executor started (a process pool, a Ray instance)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


EXECUTORS: dict[str, type[Executor]] = {}
E = TypeVar("E", bound=type[Executor])


def register(name: str) -> Callable[[E], E]:
    """Class decorator: make an executor available to `get_executor` under ``name``."""

    def decorate(cls: E) -> E:
        cls.name = name
        EXECUTORS[name] = cls
        return cls

    return decorate
