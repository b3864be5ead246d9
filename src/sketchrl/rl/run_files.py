"""The files of a fine-tuning run: its config, metrics log, and resume state.

A run directory holds ``rl_config.json``, ``metrics.csv``, ``tb/`` (TensorBoard),
``model.safetensors`` + ``model_config.json`` (the latest policy) and ``checkpoints/state.pt``.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from sketchrl.errors import ConfigError
from sketchrl.rl.config import RLConfig

CONFIG_FILE = "rl_config.json"
METRICS_FILE = "metrics.csv"
STATE_FILE = Path("checkpoints") / "state.pt"
# With a weight average, the policy's last weights (a loadable model) beside the average's.
LAST_POLICY_DIR = "last_policy"
# Keys a resumed run may change (they do not alter what was already trained).
RESUMABLE_CHANGES = ("episodes", "checkpoint_every", "device", "kl_log_every")
# Everything a run writes (a folder holding only these belongs to a sketchrl run).
RUN_FILES = {CONFIG_FILE, METRICS_FILE, "tb", "checkpoints", "model.safetensors",
             "model.safetensors.tmp",
             "model_config.json", "reward_curve.png", "DONE", LAST_POLICY_DIR}


@dataclasses.dataclass
class RunState:
    """What ``--resume`` needs besides the policy weights (device-independent: the batches'
    random numbers derive from the seed and the batch index, not from a saved generator)."""

    batch_index: int
    optimizer: dict[str, Any]
    modules: dict[str, Any] = dataclasses.field(default_factory=dict)
    # The policy's weights at this checkpoint: one atomic file holds everything a resume needs,
    # so a kill between writing it and model.safetensors cannot pair weights and optimiser
    # state of different batches (empty in states written before it was added).
    policy: dict[str, Any] = dataclasses.field(default_factory=dict)
    # The weight average's state (``ema_half_life`` > 0; else empty).
    average: dict[str, Any] = dataclasses.field(default_factory=dict)
    elapsed: float = 0.0  # seconds of training up to this checkpoint, over all attempts
    attempts: int = 1  # how many times the run was started (1 + resumes)

    def save(self, out_dir: Path) -> None:
        path = out_dir / STATE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        torch.save(dataclasses.asdict(self), temporary)
        os.replace(temporary, path)

    @classmethod
    def load(cls, out_dir: Path) -> RunState:
        values = torch.load(out_dir / STATE_FILE, map_location="cpu", weights_only=True)
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


def differing_settings(saved: RLConfig, config: RLConfig,
                       allowed: tuple[str, ...] = RESUMABLE_CHANGES) -> list[str]:
    """The settings in which ``config`` differs from a run's ``saved`` one, besides the
    ``allowed`` changes (default: those a resumed run may make)."""
    return [key for key in RLConfig.field_names()
            if getattr(saved, key) != getattr(config, key) and key not in allowed]


def prepare_run_dir(
    config: RLConfig, out_dir: Path, *, resume: bool
) -> tuple[RLConfig, RunState | None]:
    """Check that ``out_dir`` can take this run (writes nothing); never overwrites another run.

    Returns the config to use (the saved one when resuming, with allowed changes applied)
    and the saved state (None for a fresh run). :func:`write_run_config` then records it, once
    the policy and reward have loaded, so a run that fails to start leaves no folder behind.
    """
    has_state = (out_dir / STATE_FILE).exists()
    if resume and has_state:
        differing = differing_settings(RLConfig.load_json(out_dir / CONFIG_FILE), config)
        if differing:
            raise ConfigError(
                f"--resume: {out_dir} was run with different {', '.join(differing)}; "
                f"use the same config (only {', '.join(RESUMABLE_CHANGES)} may change)"
            )
        return config, RunState.load(out_dir)
    contents = {path.name for path in out_dir.iterdir()} if out_dir.exists() else set()
    # A run interrupted before its first checkpoint has nothing to resume: start it again.
    interrupted_run = bool(contents) and contents <= RUN_FILES and CONFIG_FILE in contents
    if contents and not (resume and interrupted_run):
        if has_state:
            hint = "pass --resume to continue it"
        elif interrupted_run:
            hint = ("it holds a run stopped before its first checkpoint: pass --resume to "
                    "start it again")
        else:
            hint = "choose an empty --out"
        raise ConfigError(f"output folder {out_dir} is not empty: {hint}")
    return config, None


def write_run_config(config: RLConfig, out_dir: Path) -> None:
    """Create ``out_dir`` and save the run's config in it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    config.save_json(out_dir / CONFIG_FILE)


class MetricsLog:
    """Appends one row per batch to ``metrics.csv`` and to TensorBoard.

    On resume, rows after the resumed batch (written after the last checkpoint) are dropped,
    so the log matches the restored policy, and the TensorBoard events are rewritten from the
    kept rows (an attempt killed between flushes loses nothing). Events are flushed per batch.
    """

    def __init__(self, out_dir: Path, *, start_batch: int = 0) -> None:
        self.path = out_dir / METRICS_FILE
        self.rows = read_metrics(self.path) if self.path.exists() else []
        self.rows = [row for row in self.rows if int(row["batch"]) <= start_batch]
        self.fieldnames: list[str] | None = list(self.rows[0]) if self.rows else None
        self._rewrite()
        self.tb_dir = out_dir / "tb"
        self.writer = None
        if self.tb_dir.exists():
            shutil.rmtree(self.tb_dir)
        for row in self.rows:
            self._tensorboard(row)
        self._flush()

    def _rewrite(self) -> None:
        if self.fieldnames is None:
            return
        with open(self.path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.fieldnames)
            writer.writeheader()
            writer.writerows(self.rows)

    def write(self, row: dict[str, float | int]) -> None:
        if self.fieldnames is None:
            self.fieldnames = list(row)
            self._rewrite()
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=self.fieldnames).writerow(row)
        self.rows.append(row)
        self._tensorboard(row)
        self._flush()

    def _tensorboard(self, row: dict[str, float | int | str]) -> None:
        if self.writer is None:
            from sketchrl.tensorboard import summary_writer

            self.writer = summary_writer(self.tb_dir)
        for key, value in row.items():
            number = float(value)
            if key not in ("batch", "episodes") and math.isfinite(number):
                self.writer.add_scalar(f"rl/{key}", number, int(row["batch"]))

    def _flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(path: str | Path) -> list[dict[str, str]]:
    """The rows of a run's ``metrics.csv`` as dicts of strings."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
