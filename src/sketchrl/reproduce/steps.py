"""The steps of a study as module-level functions of plain data (any executor can ship them).

Each step is idempotent and resumable: it returns at once when its output exists, and a
fine-tuning run resumes from its last checkpoint. Each fixes its own torch thread count (part of
what a result depends on, so a study gives the same numbers whichever executor ran it) and asks
torch for deterministic algorithms.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from pathlib import Path
from typing import Any

#: Environment variable for fault-injection tests: ``RUN_DIR=MARKER`` makes the training step
#: of RUN_DIR kill its own process after its first checkpoint, once (while MARKER is absent).
FAULT_KILL_ENV = "SKETCHRL_FAULT_KILL"


def setup_process(threads: int) -> None:
    """Fixed thread count and deterministic algorithms for this step."""
    import torch

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def train_classifier_step(out: str, settings: dict[str, Any], threads: int,
                          progress: bool) -> None:
    """Train a Quick, Draw! classifier (``ClassifierConfig`` settings) into ``out``."""
    if (Path(out) / "metrics.json").exists():
        return
    setup_process(threads)
    from sketchrl.classifiers import ClassifierConfig, train_classifier

    train_classifier(ClassifierConfig(**settings), out, progress=progress)


def train_step(out: str, config: dict[str, Any], threads: int, progress: bool) -> None:
    """Fine-tune (or resume) the run ``config`` (an RLConfig dict) in ``out``."""
    from sketchrl.rl import DONE_FILE, RLConfig, train

    if (Path(out) / DONE_FILE).exists():
        return
    setup_process(threads)
    rl_config = RLConfig.from_dict(config)
    _inject_fault(Path(out), rl_config, progress)
    train(rl_config, out, resume=True, progress=progress)


def soup_step(out: str, base: str, other: str, weight: float, threads: int) -> None:
    """Mix two finished runs into ``out``: every weight ``base + weight * (other - base)``,
    as ``sketchrl interpolate OTHER --base BASE`` writes it."""
    from sketchrl.models.interpolate import write_interpolation
    from sketchrl.rl import DONE_FILE

    if (Path(out) / DONE_FILE).exists():
        return
    setup_process(threads)
    write_interpolation(other, base, weight, out)
    (Path(out) / DONE_FILE).write_text("mixed\n")


def _inject_fault(out: Path, config: Any, progress: bool) -> None:
    """See :data:`FAULT_KILL_ENV` (tests of retries: a worker that dies mid-run)."""
    run_dir, _, marker = os.environ.get(FAULT_KILL_ENV, "").partition("=")
    if not run_dir or Path(run_dir).resolve() != out.resolve() or Path(marker).exists():
        return
    from sketchrl.rl import DONE_FILE, train

    batches = config.warmup_batches + config.checkpoint_every  # one checkpoint after warm-up
    partial = dataclasses.replace(config, episodes=batches * config.batch_size)
    train(partial, out, resume=True, progress=progress)
    (out / DONE_FILE).unlink()  # the partial run is not the run: die before it is done
    Path(marker).write_text("killed once\n")
    os.kill(os.getpid(), signal.SIGKILL)


def evaluate_step(out: str, model: str, n: int, reference: str, temperature: dict[str, Any],
                  max_len: int, seed: int, batch_size: int, classifier_dir: str | None,
                  target: str, rewards: list[tuple[str, str, dict[str, Any]]], device: str,
                  precision: str, threads: int, progress: bool, redo: bool = False) -> None:
    """Sample ``n`` sketches of ``model`` and evaluate them into ``out`` (``metrics.json``).

    ``rewards``: ``(metric name, reward name, options)`` measured on the samples; ``redo``:
    evaluate even if ``out`` holds an evaluation that looks current (the model was made again).
    """
    if not redo and evaluation_is_current(out, model, n, reference, seed, max_len):
        return
    setup_process(threads)
    from sketchrl.evaluate import evaluate_model
    from sketchrl.models.mixture import Temperature
    from sketchrl.rewards import build_reward

    built = {metric: build_reward(name, options, device) for metric, name, options in rewards}
    evaluate_model(
        model, n, reference=reference, out_dir=out, temperature=Temperature(**temperature),
        seed=seed, max_len=max_len, batch_size=batch_size, device=device, progress=progress,
        classifier_dir=classifier_dir, target_category=target, rewards=built,
        precision=precision,
    )


# -- what a finished step holds (checked by the driver when a changed study is resumed) -------
def run_differences(out: str, config: dict[str, Any]) -> list[str]:
    """The settings in which the finished run in ``out`` differs from ``config`` (an RLConfig
    dict) besides bookkeeping (device, checkpoint and KL-log intervals); [] when it is not
    finished or does not differ."""
    from sketchrl.rl import DONE_FILE, RLConfig
    from sketchrl.rl.run_files import CONFIG_FILE, RESUMABLE_CHANGES, differing_settings

    if not (Path(out) / DONE_FILE).exists():
        return []
    saved = RLConfig.load_json(Path(out) / CONFIG_FILE)
    bookkeeping = tuple(key for key in RESUMABLE_CHANGES if key != "episodes")
    return differing_settings(saved, RLConfig.from_dict(config), bookkeeping)


def soup_differences(out: str, base: str, other: str, weight: float, threads: int) -> list[str]:
    """What the finished soup in ``out`` mixed differently (model, base, weight); [] when it is
    not finished or does not differ. Takes a soup step's keyword arguments."""
    from sketchrl.models.interpolate import RECORD_FILE
    from sketchrl.rl import DONE_FILE

    if not (Path(out) / DONE_FILE).exists():
        return []
    if not (Path(out) / RECORD_FILE).exists():  # mixed by an earlier version: unknown
        return [f"no {RECORD_FILE}"]
    record = json.loads((Path(out) / RECORD_FILE).read_text(encoding="utf-8"))
    asked = {"model": other, "base": base, "weight": weight}
    return [key for key, value in asked.items() if record.get(key) != value]


def evaluation_is_current(out: str, model: str, n: int, reference: str, seed: int,
                          max_len: int) -> bool:
    """Whether ``out`` holds an evaluation of ``model`` as it is now, with these settings. A
    model folder is known by its weights' digest (the folder may have moved with its study), a
    named model by its name; an evaluation recorded before digests were is taken as current."""
    from sketchrl.models.io import weights_digest

    path = Path(out) / "metrics.json"
    if not path.exists():
        return False
    recorded = json.loads(path.read_text(encoding="utf-8"))
    asked: dict[str, Any] = {"n": n, "reference": reference, "seed": seed, "max_len": max_len}
    digest = weights_digest(model)
    if digest is None:
        asked["model"] = model
    elif recorded.get("model_digest") is not None:
        asked["model_digest"] = digest
    return all(recorded.get(key) == value for key, value in asked.items())
