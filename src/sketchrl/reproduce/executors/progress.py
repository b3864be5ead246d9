"""The study's progress: one bar (steps done / total), one line per finished step, timings."""

from __future__ import annotations

import logging
from typing import Any

from tqdm.auto import tqdm

from sketchrl.reproduce.executors.base import RunResult, Step, StepCallback
from sketchrl.reproduce.executors.graph import StepGraph

logger = logging.getLogger(__name__)


def format_seconds(seconds: float) -> str:
    """``0.4s``, ``12.3s``, ``3m07s``, ``2h05m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class StudyProgress:
    """Marks steps finished in the graph, reports them, and collects the `RunResult`.

    With ``progress`` a tqdm bar counts steps and each finished step writes one line through
    ``tqdm.write``; without it the line goes to this module's logger at INFO level.
    """

    def __init__(self, graph: StepGraph, progress: bool, callback: StepCallback | None,
                 done_hint: str = "") -> None:
        self.graph = graph
        self.progress = progress
        self.callback = callback
        self.done_hint = done_hint
        self.result = RunResult(skipped=list(graph.skipped))
        self._bar: Any = None

    def __enter__(self) -> StudyProgress:
        if self.result.skipped:
            logger.info("%d of %d steps already done", len(self.result.skipped), len(self.graph))
        self._bar = tqdm(total=len(self.graph), initial=len(self.result.skipped), desc="study",
                         unit="step", disable=not self.progress, dynamic_ncols=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bar.close()

    def finished(self, step: Step, seconds: float) -> None:
        """``step`` ran to the end in ``seconds`` (wall time)."""
        self.graph.finish(step.key)
        if step.done is not None and not step.is_done():
            logger.warning("step %s finished but its done check is still false%s", step.key,
                           f" ({self.done_hint})" if self.done_hint else "")
        self.result.timings[step.key] = seconds
        line = f"{step.key} done in {format_seconds(seconds)}"
        if self.progress:
            self._bar.update(1)
            tqdm.write(line)
        else:
            logger.info(line)
        if self.callback is not None:
            self.callback(step.key, seconds)
