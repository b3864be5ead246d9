"""Executors run a study's steps in dependency order, skip finished ones, survive dead workers,
and give the same files whichever of them ran the steps."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sketchrl.errors import ConfigError
from sketchrl.reproduce.executors import (
    RemoteTraceback,
    Step,
    StepError,
    executor_names,
    get_executor,
)
from sketchrl.reproduce.executors.base import available_cores

TESTS = Path(__file__).resolve().parent


# -- toy steps (module level: worker processes and Ray workers import them) ----------------------
def _count(root: Path, key: str) -> None:
    """One more line in ``runs/<key>``: how many times the step started."""
    (root / "runs").mkdir(parents=True, exist_ok=True)
    with open(root / "runs" / key, "a") as file:
        file.write("run\n")


def _write_output(root: Path, key: str, inputs: list[str], extra: str = "") -> None:
    """``out/<key>.txt`` = a hash of the key and its inputs' outputs (all must exist)."""
    digest = hashlib.sha256((key + extra).encode())
    for dep in inputs:
        digest.update((root / "out" / f"{dep}.txt").read_bytes())  # raises if dep not done
    (root / "out").mkdir(parents=True, exist_ok=True)
    tmp = root / "out" / f"{key}.tmp"
    tmp.write_text(digest.hexdigest() + "\n")
    tmp.replace(root / "out" / f"{key}.txt")


def toy_step(root: str, key: str, inputs: list[str], sleep: float = 0.0) -> None:
    """Deterministic: reads its deps' outputs, writes its own last."""
    root_path = Path(root)
    _count(root_path, key)
    time.sleep(sleep)
    _write_output(root_path, key, inputs)


def crashy_step(root: str, key: str, inputs: list[str]) -> None:
    """Writes a checkpoint, then kills its own process the first time; resumes from it after."""
    root_path = Path(root)
    _count(root_path, key)
    checkpoint = root_path / "ckpt" / key
    if checkpoint.exists():
        (root_path / "resumed").mkdir(exist_ok=True)
        (root_path / "resumed" / key).write_text(checkpoint.read_text())
    else:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.write_text("half way\n")
    marker = root_path / "killed" / key
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("killed once\n")
        os.kill(os.getpid(), signal.SIGKILL)
    _write_output(root_path, key, inputs, extra=checkpoint.read_text())


def failing_step(root: str, key: str, inputs: list[str]) -> None:
    _count(Path(root), key)
    raise ValueError(f"{key} failed on purpose")


class _Unrebuildable(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{code}: {detail}")


def unpicklable_failure(root: str, key: str, inputs: list[str]) -> None:
    raise _Unrebuildable(3, "cannot be rebuilt from its args")


def thread_step(root: str, key: str, inputs: list[str]) -> None:
    import torch

    (Path(root) / f"{key}.threads").write_text(
        f"{os.environ.get('OMP_NUM_THREADS')} {torch.get_num_threads()}\n"
    )


# -- studies ---------------------------------------------------------------------------------
def make_step(root: Path, key: str, deps: tuple[str, ...] = (), fn=toy_step, **extra) -> Step:
    return Step(key, fn, {"root": str(root), "key": key, "inputs": list(deps), **extra},
                done=root / "out" / f"{key}.txt", deps=deps)


def chain_and_diamond(root: Path, sleep: float = 0.0) -> list[Step]:
    """c1 -> c2 -> c3, and d1 -> (d2, d3) -> d4; listed out of order on purpose."""
    graph = {"c3": ("c2",), "c2": ("c1",), "c1": (), "d4": ("d2", "d3"), "d2": ("d1",),
             "d3": ("d1",), "d1": ()}
    return [make_step(root, key, deps, sleep=sleep) for key, deps in graph.items()]


def outputs(root: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted((root / "out").glob("*.txt"))}


def run_counts(root: Path) -> dict[str, int]:
    return {path.name: len(path.read_text().splitlines())
            for path in sorted((root / "runs").iterdir())}


# -- registry and validation ----------------------------------------------------------------------
def test_registry_lists_executors_and_rejects_unknown_names():
    assert {"local", "ray"} <= set(executor_names())
    with pytest.raises(ConfigError, match="choose one of: .*local.*ray") as info:
        get_executor("slurm")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="takes no option address"):
        get_executor("local", address="10.0.0.1:6379")
    assert get_executor("local", workers=None).workers == 1  # None options are dropped


def test_workers_above_cores_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match=f"workers={available_cores() + 1} .* cores") as info:
        get_executor("local", workers=available_cores() + 1)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError):
        get_executor("local", workers=0)


@pytest.mark.parametrize("build, match", [
    (lambda r: [make_step(r, "a", ("b",)), make_step(r, "b", ("a",))], "cycle"),
    (lambda r: [make_step(r, "a", ("missing",))], "unknown step"),
    (lambda r: [make_step(r, "a"), make_step(r, "a")], "unique"),
    (lambda r: [make_step(r, "a/b")], "filesystem-safe"),
    (lambda r: [Step("a", lambda: None)], "module-level function"),
])
def test_invalid_studies_are_config_errors(tmp_path, build, match):
    with pytest.raises(ConfigError, match=match):
        get_executor("local", progress=False).run(build(tmp_path))


def test_importing_executors_does_not_import_ray():
    code = ("import sys, sketchrl.reproduce, sketchrl.reproduce.executors as e; "
            "e.get_executor('local'); assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ray_executor_without_ray_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ConfigError, match='pip install "sketchrl\\[ray\\]"'):
        get_executor("ray")


# -- local executor --------------------------------------------------------------------------
def test_in_process_respects_order_and_never_reruns_finished_steps(tmp_path, capsys):
    steps = chain_and_diamond(tmp_path)
    seen: list[str] = []
    result = get_executor("local").run(steps, on_step_done=lambda key, s: seen.append(key))
    assert seen == ["c1", "c2", "c3", "d1", "d2", "d3", "d4"]  # given order, deps first
    assert list(result.timings) == seen and result.skipped == []
    assert all(seconds >= 0 for seconds in result.timings.values())
    lines = [line for line in capsys.readouterr().out.splitlines() if " done in " in line]
    assert len(lines) == 7
    assert run_counts(tmp_path) == dict.fromkeys(seen, 1)

    (tmp_path / "out" / "d2.txt").unlink()  # only d2 is missing: only d2 runs again
    again = get_executor("local", progress=False).run(chain_and_diamond(tmp_path))
    assert list(again.timings) == ["d2"] and len(again.skipped) == 6
    assert run_counts(tmp_path) == {**dict.fromkeys(seen, 1), "d2": 2}


def test_two_workers_give_the_same_files_as_one(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    get_executor("local", progress=False).run(chain_and_diamond(one))
    result = get_executor("local", workers=2, progress=False).run(chain_and_diamond(two, 0.2))
    assert outputs(two) == outputs(one) and len(outputs(one)) == 7
    assert run_counts(two) == run_counts(one)
    assert set(result.timings) == {step.key for step in chain_and_diamond(two)}
    again = get_executor("local", workers=2, progress=False).run(chain_and_diamond(two))
    assert again.timings == {} and run_counts(two) == run_counts(one)


def test_pool_workers_split_the_cores(tmp_path):
    steps = [Step("t", thread_step, {"root": str(tmp_path), "key": "t", "inputs": []})]
    get_executor("local", workers=2, progress=False).run(steps)
    threads = str(max(1, available_cores() // 2))
    assert (tmp_path / "t.threads").read_text().split() == [threads, threads]


def test_pool_retries_a_killed_worker_and_resumes_its_step(tmp_path):
    steps = [make_step(tmp_path, "a"), make_step(tmp_path, "b", ("a",), fn=crashy_step),
             make_step(tmp_path, "c", ("b",)), make_step(tmp_path, "d")]
    reference = tmp_path / "reference"
    result = get_executor("local", workers=2, progress=False).run(steps)
    assert set(result.timings) == {"a", "b", "c", "d"}
    assert run_counts(tmp_path) == {"a": 1, "b": 2, "c": 1, "d": 1}
    assert (tmp_path / "resumed" / "b").read_text() == "half way\n"
    # The same files as an uninterrupted run, and nothing recomputed on the next run.
    (reference / "killed").mkdir(parents=True)
    (reference / "killed" / "b").write_text("")
    get_executor("local", progress=False).run(
        [make_step(reference, s.key, s.deps, fn=s.fn) for s in steps])
    assert outputs(tmp_path) == outputs(reference)
    get_executor("local", workers=2, progress=False).run(steps)
    assert run_counts(tmp_path) == {"a": 1, "b": 2, "c": 1, "d": 1}


def test_pool_gives_up_on_a_step_that_keeps_dying(tmp_path):
    steps = [make_step(tmp_path, "b", fn=crashy_step)]
    with pytest.raises(StepError, match=r"died 1 time\(s\), last killed by SIGKILL"):
        get_executor("local", workers=2, max_retries=0, progress=False).run(steps)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_step_stops_the_study_with_its_error(tmp_path, workers):
    steps = [make_step(tmp_path, "a"), make_step(tmp_path, "bad", ("a",), fn=failing_step),
             make_step(tmp_path, "after", ("bad",))]
    done: list[str] = []
    with pytest.raises(ValueError, match="bad failed on purpose") as info:
        get_executor("local", workers=workers, progress=False).run(
            steps, on_step_done=lambda key, s: done.append(key))
    assert done == ["a"] and (tmp_path / "out" / "a.txt").exists()
    assert "after" not in run_counts(tmp_path)
    if workers > 1:
        assert isinstance(info.value.__cause__, RemoteTraceback)
        assert "failing_step" in str(info.value.__cause__)


def test_an_exception_that_cannot_cross_processes_becomes_a_step_error(tmp_path):
    steps = [make_step(tmp_path, "odd", fn=unpicklable_failure)]
    with pytest.raises(StepError, match="step odd: .*_Unrebuildable: 3: cannot be rebuilt"):
        get_executor("local", workers=2, progress=False).run(steps)


# -- ray executor (one local Ray instance for the module) ---------------------------------------
def _require_ray() -> None:
    if importlib.util.find_spec("ray") is None:
        from conftest import skip_or_fail

        skip_or_fail('ray is not installed (pip install "sketchrl[ray]")')


@pytest.fixture(scope="module")
def ray_executor():
    """A 2-CPU local Ray instance whose workers can import this test module."""
    _require_ray()
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
    executor = get_executor("ray", num_cpus=2, progress=False,
                            runtime_env={"env_vars": {"PYTHONPATH": path}})
    with executor:
        yield executor


@pytest.mark.ray
def test_ray_gives_the_same_files_as_local(tmp_path, ray_executor):
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    get_executor("local", progress=False).run(chain_and_diamond(local))
    result = ray_executor.run(chain_and_diamond(on_ray, 0.1))
    assert outputs(on_ray) == outputs(local) and run_counts(on_ray) == run_counts(local)
    assert set(result.timings) == {step.key for step in chain_and_diamond(on_ray)}
    again = ray_executor.run(chain_and_diamond(on_ray))
    assert again.timings == {} and run_counts(on_ray) == run_counts(local)
    with pytest.raises(ConfigError, match="needs 3 CPUs but the Ray cluster has 2"):
        ray_executor.run([Step("big", toy_step, {}, cpus=3)])


@pytest.mark.ray
def test_ray_retries_a_killed_worker_and_resumes_its_step(tmp_path, ray_executor):
    steps = [make_step(tmp_path, "a"), make_step(tmp_path, "b", ("a",), fn=crashy_step),
             make_step(tmp_path, "c", ("b",))]
    result = ray_executor.run(steps)
    assert set(result.timings) == {"a", "b", "c"}
    assert run_counts(tmp_path) == {"a": 1, "b": 2, "c": 1}
    assert (tmp_path / "resumed" / "b").read_text() == "half way\n"
    # Without retries Ray gives up; this executor reuses the module's open Ray connection.
    no_retries = get_executor("ray", max_retries=0, progress=False)
    with pytest.raises(StepError, match="Ray gave up after 0 retries"):
        no_retries.run([make_step(tmp_path / "once", "b", fn=crashy_step)])
    assert run_counts(tmp_path / "once") == {"b": 1}


@pytest.mark.ray
def test_ray_step_failure_raises_the_steps_exception(tmp_path, ray_executor):
    steps = [make_step(tmp_path, "a"), make_step(tmp_path, "bad", ("a",), fn=failing_step)]
    with pytest.raises(ValueError, match="bad failed on purpose"):
        ray_executor.run(steps)
    assert run_counts(tmp_path) == {"a": 1, "bad": 1}  # an exception is not retried


@pytest.mark.ray
def test_unreachable_ray_address_fails_fast_with_one_line():
    _require_ray()
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=f"cannot reach the Ray cluster at {address}") as info:
        get_executor("ray", address=address)
    assert time.perf_counter() - started < 10
    assert "\n" not in str(info.value)
