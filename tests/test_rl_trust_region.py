"""Step-size controls of grpo / ppo: the learning rate's linear decay (``lr_end``) and the
early stop of a batch's optimiser steps (``max_approx_kl``), and exact resumes with both."""

from __future__ import annotations

import pytest
import torch

from sketchrl.errors import ConfigError
from sketchrl.rl import Trainer, load_rl_config, read_metrics, train
from tests.test_rl_lr_warmup import recorded_lrs
from tests.test_rl_trainer import (
    InkReward,
    parameters,
    tiny_config,
    tiny_vae,
    train_killed_then_resumed,
)

GRPO = dict(algorithm="grpo", group_size=4, epochs=2, minibatches=2)


def test_learning_rate_decays_linearly_over_the_update_batches():
    config = tiny_config(**GRPO, lr=1e-3, lr_end=0.25, warmup_batches=1, episodes=5 * 8)
    rates = recorded_lrs(Trainer(config, policy=tiny_vae(), reward=InkReward(), device="cpu"),
                         5)
    # 4 update batches (2 epochs x 2 minibatches each): 1 - 0.75 * k / 4 for k = 0..3
    expected = [1e-3 * factor for factor in (1.0, 0.8125, 0.625, 0.4375) for _ in range(4)]
    assert rates == pytest.approx(expected, rel=1e-12)


def test_the_decay_multiplies_the_warmup():
    config = tiny_config(**GRPO, lr=1e-3, lr_end=0.0, lr_warmup=2, warmup_batches=0,
                         episodes=2 * 8)
    rates = recorded_lrs(Trainer(config, policy=tiny_vae(), reward=InkReward(), device="cpu"),
                         2)
    assert rates == pytest.approx([5e-4, 1e-3, 1e-3, 1e-3] + [5e-4] * 4, rel=1e-12)


def count_steps(trainer: Trainer, batches: int) -> list[int]:
    """Optimiser steps taken in each of ``batches`` batches."""
    counts: list[int] = []
    step = trainer.optimizer.step

    def counting_step(*args, **kwargs):
        counts[-1] += 1
        return step(*args, **kwargs)

    trainer.optimizer.step = counting_step
    for _ in range(batches):
        counts.append(0)
        trainer.run_batch()
    return counts


@pytest.mark.parametrize(("limit", "steps"), [(0.0, 4), (1e9, 4), (1e-12, 1)])
def test_a_batch_stops_once_the_policy_has_moved_past_max_approx_kl(limit, steps):
    """Every step after a batch's first sees a policy that has moved from the sampling one
    (approx_kl > 0): a tiny bound leaves one step a batch, a huge one all four."""
    config = tiny_config(**GRPO, max_approx_kl=limit, warmup_batches=1)
    trainer = Trainer(config, policy=tiny_vae(), reward=InkReward(), device="cpu")
    assert count_steps(trainer, 3) == [0, steps, steps]
    # skipped steps still count for the schedule, as a resume recomputes it
    assert trainer.updates == 2 * 4


def test_the_log_says_how_many_steps_each_batch_took(tmp_path):
    config = tiny_config(**GRPO, max_approx_kl=1e-12)
    train(config, tmp_path / "run", policy=tiny_vae(), reward=InkReward(), progress=False)
    rows = read_metrics(tmp_path / "run" / "metrics.csv")
    assert [row["update_steps"] for row in rows] == ["nan", "1", "1", "1"]
    assert "update_steps" not in read_metrics_columns(tmp_path, GRPO)


def read_metrics_columns(tmp_path, settings) -> list[str]:
    train(tiny_config(**settings), tmp_path / "plain", policy=tiny_vae(), reward=InkReward(),
          progress=False)
    return list(read_metrics(tmp_path / "plain" / "metrics.csv")[0])


def test_resume_with_the_decay_and_the_early_stop_continues_exactly(tmp_path, monkeypatch,
                                                                    kill_on_call):
    from sketchrl.rl.run_files import RunState

    config = tiny_config(**GRPO, lr_end=0.0, max_approx_kl=0.02, checkpoint_every=1,
                         episodes=6 * 8)
    straight = tiny_vae()
    train(config, tmp_path / "straight", policy=straight, reward=InkReward(), progress=False)
    kill_on_call(RunState, "save", 3)
    resumed = train_killed_then_resumed(config, tmp_path / "resumed", monkeypatch)
    for name, value in parameters(straight).items():
        torch.testing.assert_close(parameters(resumed)[name], value, rtol=0, atol=0)
    rows = [read_metrics(tmp_path / run / "metrics.csv") for run in ("straight", "resumed")]
    assert rows[0] == rows[1]
    assert {row["update_steps"] for row in rows[0][1:]} > {"4"}  # the bound acted


@pytest.mark.parametrize(("setting", "message"), [
    ("lr_end=1.5", "lr_end must be in"),
    ("max_approx_kl=-1", "max_approx_kl must be >= 0"),
])
def test_bad_values_are_refused(setting, message):
    with pytest.raises(ConfigError, match=message):
        load_rl_config(None, ["algorithm=grpo", "group_size=4", "batch_size=16", setting])


def test_reinforce_refuses_max_approx_kl():
    with pytest.raises(ConfigError, match="max_approx_kl"):
        load_rl_config(None, ["max_approx_kl=0.1"])
