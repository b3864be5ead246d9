"""The ``ray`` executor: each step a Ray task, on a local Ray instance or an existing cluster.

Steps are submitted as tasks once their deps have finished, reserving ``num_cpus=step.cpus``
and ``num_gpus=step.gpus``; inside a task the math libraries use ``max(1, int(step.cpus))``
threads. A task whose worker process or node dies is retried by Ray (``max_retries``) and the
step resumes from its own checkpoint; a step's own exception is not retried: it stops the study.

Every node runs the steps' functions, so every node needs sketchrl (and the steps' modules)
importable, and the steps' outputs (the study's ``--out``) must be on a path every node can
reach under the same name (a shared filesystem), given to steps as absolute paths (workers on
other nodes do not share the driver's working directory); the driver reads them to check
``done``.

Ray is optional (``pip install "sketchrl[ray]"``); this module imports it only when used.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Mapping
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


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            'the ray executor needs Ray: pip install "sketchrl[ray]" (or use the local executor)'
        ) from None
    return ray


def check_reachable(address: str, timeout: float) -> None:
    """Fail fast (ConfigError) when nothing listens at a Ray ``address`` ("host:port")."""
    if address in ("auto", "local"):
        return
    host_port = address.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise ConfigError(f"Ray address {address!r} is not host:port (e.g. 10.0.0.1:6379)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as err:
        raise ConfigError(
            f"cannot reach the Ray cluster at {address} ({err.strerror or err}); start it with "
            "`ray start --head` or fix the address"
        ) from None


def _run_step(fn: Callable[..., Any], kwargs: Mapping[str, Any], threads: int) -> float:
    """A Ray task: one step with ``threads`` threads; returns its wall time."""
    limit_threads(threads)
    started = time.perf_counter()
    fn(**kwargs)
    return time.perf_counter() - started


@register("ray")
class RayExecutor(Executor):
    """Run steps as Ray tasks.

    Args:
        address: an existing cluster ("host:port", "ray://host:10001" or "auto"); None starts
            a local Ray instance for the run and shuts it down afterwards. A Ray connection
            already open in this process is reused and left open.
        num_cpus, num_gpus: size of the local instance (default: this machine's cores; GPUs
            detected); not allowed with ``address``.
        max_retries: times Ray restarts a step whose worker process or node died.
        connect_timeout: seconds to wait for ``address`` before failing.
        runtime_env: passed to ``ray.init`` (e.g. ``{"env_vars": {"PYTHONPATH": ...}}`` when
            the steps' modules are not installed on the workers).
        progress: show the study's progress bar and one line per finished step.
    """

    done_hint = "with a Ray cluster, outputs must be on a path every node can reach"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None,
                 num_gpus: int | None = None, max_retries: int = 2, connect_timeout: float = 5.0,
                 runtime_env: Mapping[str, Any] | None = None, progress: bool = True) -> None:
        super().__init__(progress=progress)
        self._ray = _import_ray()
        if address is not None and (num_cpus is not None or num_gpus is not None):
            raise ConfigError(f"num_cpus/num_gpus size a local Ray instance; drop them to use "
                              f"the cluster at {address}")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if address is not None:
            check_reachable(address, connect_timeout)
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.max_retries = max_retries
        self.runtime_env = dict(runtime_env) if runtime_env else None
        self._started = False  # this executor called ray.init (and will call ray.shutdown)
        self._in_context = False

    # -- connection -----------------------------------------------------------------------------
    def __enter__(self) -> RayExecutor:
        self._connect()
        self._in_context = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._in_context = False
        self.close()

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False

    def _connect(self) -> bool:
        """Start or join Ray unless connected already; True when this call did."""
        ray = self._ray
        if ray.is_initialized():
            if not self._started:
                logger.info("using the Ray connection already open in this process")
            return False
        options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                                   "runtime_env": self.runtime_env}
        if self.address is None:
            options.update(num_cpus=self.num_cpus or available_cores(), num_gpus=self.num_gpus)
        else:
            options["address"] = self.address
        try:
            ray.init(**options)
        except (ConnectionError, TimeoutError, RuntimeError) as err:
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(f"cannot start or join {where}: {first}") from err
        self._started = True
        return True

    # -- running --------------------------------------------------------------------------------
    def _execute(self, graph: StepGraph, report: StudyProgress) -> None:
        connected_here = self._connect()
        try:
            self._check_resources(graph)
            self._schedule(graph, report)
        finally:
            if connected_here and not self._in_context:
                self.close()

    def _check_resources(self, graph: StepGraph) -> None:
        """A step needing more than the whole cluster has would wait forever: refuse it."""
        total = self._ray.cluster_resources()
        for step in graph.order:
            for resource, need in (("CPU", step.cpus), ("GPU", step.gpus)):
                have = total.get(resource, 0.0)
                if need <= have:
                    continue
                message = (f"step {step.key} needs {need:g} {resource}s but the Ray cluster has "
                           f"{have:g}")
                if self.address is None:
                    raise ConfigError(f"{message}; give the executor num_{resource.lower()}s="
                                      f"{need:g} or lower the step's {resource.lower()}s")
                logger.warning("%s; it waits until the cluster grows", message)

    def _schedule(self, graph: StepGraph, report: StudyProgress) -> None:
        ray = self._ray
        task = ray.remote(_run_step)
        running: dict[Any, Step] = {}
        try:
            while not graph.all_finished:
                for step in graph.ready():
                    graph.start(step.key)
                    ref = task.options(
                        num_cpus=step.cpus, num_gpus=step.gpus, max_retries=self.max_retries,
                        retry_exceptions=False, name=step.key,
                    ).remote(step.fn, step.kwargs, max(1, int(step.cpus)))
                    running[ref] = step
                finished, _ = ray.wait(list(running), num_returns=1)
                step = running.pop(finished[0])
                report.finished(step, self._result(step, finished[0]))
        finally:
            for ref in running:  # the study stopped: stop its other tasks too
                try:
                    ray.cancel(ref, force=True)
                except Exception as err:  # noqa: BLE001 (already finished or gone)
                    logger.debug("could not cancel a task: %s", err)

    def _result(self, step: Step, ref: Any) -> float:
        """The step's wall time, or its failure raised here."""
        exceptions = self._ray.exceptions
        try:
            return float(self._ray.get(ref))
        except exceptions.RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, ImportError) and hasattr(cause, "add_note"):
                cause.add_note("(Ray workers import each step's function: install its package on "
                               "every node, or pass runtime_env with PYTHONPATH or py_modules)")
            raise_step_failure(step.key, cause if isinstance(cause, Exception) else None,
                               str(err))
        except exceptions.RayError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise StepError(step.key, f"Ray gave up after {self.max_retries} retries: "
                                      f"{type(err).__name__}: {first}") from err
