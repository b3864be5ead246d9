"""``train``: run (or resume) a fine-tuning run in an output folder, with checkpoints and logs."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path

from sketchrl.errors import ConfigError
from sketchrl.models import SketchRNN, load_model, save_model
from sketchrl.rewards import Reward
from sketchrl.rl.config import RLConfig
from sketchrl.rl.plots import save_reward_curves
from sketchrl.rl.run_files import (
    LAST_POLICY_DIR,
    MetricsLog,
    RunState,
    prepare_run_dir,
    write_run_config,
)
from sketchrl.rl.trainer import Trainer

logger = logging.getLogger(__name__)

CURVE_FILE = "reward_curve.png"
#: Written last, when every batch has run (a study's "done" marker).
DONE_FILE = "DONE"


@dataclasses.dataclass
class RunSummary:
    """What a finished (or resumed-to-the-end) run did, over all its attempts."""

    out_dir: Path
    batches: int
    seconds: float
    attempts: int


def train(
    config: RLConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    policy: SketchRNN | None = None,
    reward: Reward | None = None,
) -> Path:
    """Run (or resume) a fine-tuning run writing into ``out_dir``; returns ``out_dir``.

    Writes the current policy (``model.safetensors`` + ``model_config.json``; with
    ``ema_half_life`` > 0 its weight average, the last weights in ``last_policy/``) and the resume
    state every ``checkpoint_every`` batches and at the end, ``rl_config.json``, one
    ``metrics.csv`` row per batch, TensorBoard scalars under ``tb/``, and at the end
    ``reward_curve.png`` and ``DONE``.
    """
    return train_run(config, out_dir, resume=resume, progress=progress, policy=policy,
                     reward=reward).out_dir


def train_run(config: RLConfig, out_dir: str | Path, *, resume: bool = False,
              progress: bool = True, policy: SketchRNN | None = None,
              reward: Reward | None = None) -> RunSummary:
    """:func:`train`, returning a :class:`RunSummary`."""
    out_dir = Path(out_dir)
    config, saved_state = prepare_run_dir(config, out_dir, resume=resume)
    trainer = Trainer(config, policy=policy, reward=reward)
    write_run_config(config, out_dir)
    elapsed, attempts = 0.0, 1
    if saved_state is not None:
        if not saved_state.policy:  # a state from before the policy was part of it
            trainer.policy.load_state_dict(
                load_model(out_dir, device=trainer.device).state_dict())
        trainer.load_state(saved_state)
        elapsed, attempts = saved_state.elapsed, saved_state.attempts + 1
    if trainer.batch_index >= config.num_batches:
        logger.info("%s: already finished (%d batches)", out_dir, trainer.batch_index)
        (out_dir / DONE_FILE).touch()
        return RunSummary(out_dir, trainer.batch_index, elapsed, attempts - 1)
    started = time.perf_counter()
    log = MetricsLog(out_dir, start_batch=trainer.batch_index)
    bar = progress_bar(config, trainer.batch_index, progress)
    try:
        while trainer.batch_index < config.num_batches:
            row = trainer.run_batch()
            log.write(row)
            bar.update(1)
            bar.set_postfix(reward=f"{row['reward_mean']:.3f}")
            if not math.isfinite(row["loss"]) and row["updated"]:
                # checked first: never checkpoint a broken policy
                raise ConfigError(
                    f"loss became {row['loss']} at batch {row['batch']}; lower lr "
                    "(the last checkpoint is kept)"
                )
            last = trainer.batch_index == config.num_batches
            if trainer.batch_index % config.checkpoint_every == 0 or last:
                seconds = elapsed + time.perf_counter() - started
                save_checkpoint(trainer, out_dir, seconds, attempts)
    finally:
        bar.close()
        log.close()
    save_reward_curves([(out_dir, f"{config.algorithm}, {config.reward} ({out_dir.name})")],
                       out_dir / CURVE_FILE)
    (out_dir / DONE_FILE).touch()
    return RunSummary(out_dir, trainer.batch_index, elapsed + time.perf_counter() - started,
                      attempts)


def save_checkpoint(trainer: Trainer, out_dir: Path, elapsed: float, attempts: int) -> None:
    """Resume state (with the policy, in one atomic file), then the policy at the top level of
    ``out_dir`` (loadable as a model; with ``ema_half_life`` the weight average, and the last
    weights in ``last_policy/``); a kill between them resumes from the state."""
    state: RunState = trainer.state()
    state.elapsed, state.attempts = elapsed, attempts
    state.save(out_dir)
    if trainer.average is not None:
        save_model(trainer.policy, out_dir / LAST_POLICY_DIR)
    save_model(trainer.output_policy, out_dir)


def progress_bar(config: RLConfig, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=config.num_batches, initial=initial, desc=config.algorithm, unit="batch",
                disable=not enabled)
