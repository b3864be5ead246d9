"""The ``local`` executor: steps in this process (workers=1) or in a pool of spawned processes.

With ``workers=N > 1`` each worker is a "spawn" process that sets its math libraries to
``max(1, cores // N)`` threads before any work, so N steps never oversubscribe the cores. A
worker that dies (killed, out of memory) has its step started again in a fresh worker (at most
``max_retries`` times); the step resumes from its own checkpoint. A step that raises stops the
study: the other running steps are terminated (they resume on the next run) and the exception
is raised here, its worker's traceback chained as the cause.
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import signal
import time
import traceback
from multiprocessing.connection import Connection, wait
from typing import Any

from sketchrl.errors import ConfigError
from sketchrl.reproduce.executors.base import (
    Executor,
    Step,
    StepError,
    available_cores,
    limit_threads,
    raise_step_failure,
    register,
)
from sketchrl.reproduce.executors.graph import StepGraph
from sketchrl.reproduce.executors.progress import StudyProgress

logger = logging.getLogger(__name__)


@register("local")
class LocalExecutor(Executor):
    """Run steps on this machine, one at a time in this process or ``workers`` at a time.

    Args:
        workers: steps run at once; 1 (default) runs them in this process, in order, with this
            process's thread settings; more uses that many spawned processes with
            ``cores // workers`` threads each. At most the number of cores.
        max_retries: times a step is restarted after its worker process died.
        progress: show the study's progress bar and one line per finished step.
    """

    def __init__(self, workers: int = 1, *, max_retries: int = 2, progress: bool = True) -> None:
        super().__init__(progress=progress)
        cores = available_cores()
        if not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers must be a positive integer, got {workers!r}")
        if workers > cores:
            raise ConfigError(
                f"workers={workers} is more than this machine's {cores} cores; use {cores} or fewer"
            )
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        self.workers = workers
        self.max_retries = max_retries
        self.threads = max(1, cores // workers)

    def _execute(self, graph: StepGraph, report: StudyProgress) -> None:
        if self.workers == 1:
            self._run_in_process(graph, report)
        else:
            _Pool(self.workers, self.threads, self.max_retries).run(graph, report)

    @staticmethod
    def _run_in_process(graph: StepGraph, report: StudyProgress) -> None:
        while not graph.all_finished:
            step = graph.ready()[0]
            graph.start(step.key)
            started = time.perf_counter()
            try:
                step.fn(**step.kwargs)
            except Exception as exc:
                if hasattr(exc, "add_note"):
                    exc.add_note(f"(in step {step.key})")
                raise
            report.finished(step, time.perf_counter() - started)


class _Worker:
    """One spawned worker process and the pipe to it."""

    def __init__(self, context: Any, threads: int) -> None:
        self.conn, child = context.Pipe()
        # Not a daemon: a step may start processes of its own (data loader workers).
        self.process = context.Process(target=_worker_main, args=(child, threads),
                                       name="sketchrl-step-worker")
        self.process.start()
        child.close()
        self.step: Step | None = None
        self.ready = False  # the process started and set its threads

    def send(self, step: Step) -> None:
        self.step = step
        self.conn.send((step.key, step.fn, step.kwargs))

    def stop(self, timeout: float = 5.0) -> None:
        """Ask an idle worker to exit; terminate a busy (or stuck) one."""
        if self.process.is_alive() and self.step is None:
            try:
                self.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout)
        self.conn.close()


class _Pool:
    """Feeds ready steps to idle workers, collects results, replaces dead workers."""

    def __init__(self, size: int, threads: int, max_retries: int) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.size = size
        self.threads = threads
        self.max_retries = max_retries
        self.deaths: dict[str, int] = {}

    def run(self, graph: StepGraph, report: StudyProgress) -> None:
        workers = [_Worker(self.context, self.threads) for _ in range(self.size)]
        try:
            while not graph.all_finished:
                for index, worker in enumerate(workers):
                    ready = graph.ready()
                    if worker.step is None and ready:
                        if not worker.process.is_alive():  # died while idle
                            worker.stop()
                            worker = workers[index] = _Worker(self.context, self.threads)
                        graph.start(ready[0].key)
                        worker.send(ready[0])
                busy = [worker for worker in workers if worker.step is not None]
                if not busy:
                    raise RuntimeError("no step is running or ready, yet the study is unfinished")
                wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
                for index, worker in enumerate(workers):
                    if worker.step is not None and self._collect(worker, graph, report):
                        workers[index] = _Worker(self.context, self.threads)
        finally:
            for worker in workers:
                worker.stop()

    def _collect(self, worker: _Worker, graph: StepGraph, report: StudyProgress) -> bool:
        """Handle what ``worker`` reported; True when it died and must be replaced."""
        step = worker.step
        assert step is not None
        message = None
        while message is None and worker.conn.poll():
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                break
            if message[0] == "ready":
                worker.ready, message = True, None
        if message is None:
            if worker.process.is_alive():
                return False
            worker.process.join()
            worker.step = None
            self._died(step, worker, graph)
            return True
        worker.step = None
        if message[0] == "done":
            report.finished(step, message[2])
            return False
        _, _, exc_bytes, traceback_text = message
        raise_step_failure(step.key, _unpickle(exc_bytes), traceback_text)

    def _died(self, step: Step, worker: _Worker, graph: StepGraph) -> None:
        cause = _describe_exit(worker.process.exitcode)
        if not worker.ready:
            raise StepError(step.key, f"a worker process failed to start ({cause}; its error is "
                            "above); a script must keep its code under if __name__ == '__main__'")
        deaths = self.deaths[step.key] = self.deaths.get(step.key, 0) + 1
        if deaths > self.max_retries:
            raise StepError(step.key, f"its worker process died {deaths} time(s), last {cause} "
                                      "(often: out of memory); free memory or use fewer workers")
        logger.warning("step %s: worker process died (%s); restarting it (retry %d of %d)",
                       step.key, cause, deaths, self.max_retries)
        graph.retry(step.key)


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def _unpickle(data: bytes | None) -> BaseException | None:
    if data is None:
        return None
    try:
        exc = pickle.loads(data)
    except Exception:  # an exception class that cannot be rebuilt from its args
        return None
    return exc if isinstance(exc, BaseException) else None


def _worker_main(conn: Connection, threads: int) -> None:
    """A worker process: set threads, then run steps sent through ``conn`` until told to stop."""
    limit_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the driver stops the workers
    conn.send(("ready",))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        key, fn, kwargs = task
        started = time.perf_counter()
        try:
            fn(**kwargs)
        except BaseException as exc:  # noqa: BLE001 (reported to the driver, which raises it)
            try:
                exc_bytes: bytes | None = pickle.dumps(exc)
            except Exception:
                exc_bytes = None
            conn.send(("error", key, exc_bytes, traceback.format_exc()))
            continue
        conn.send(("done", key, time.perf_counter() - started))
