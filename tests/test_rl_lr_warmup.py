"""The policy's learning-rate warm-up (``lr_warmup``): the ramp, its effect on Adam's first
step, and an exact resume in the middle of it."""

from __future__ import annotations

import pytest

from sketchrl.errors import ConfigError
from sketchrl.rl import Trainer, load_rl_config
from tests.test_rl_trainer import (
    InkReward,
    assert_resume_continues_exactly,
    parameters,
    tiny_config,
    tiny_vae,
)


def recorded_lrs(trainer: Trainer, batches: int) -> list[float]:
    rates: list[float] = []
    step = trainer.optimizer.step

    def recording_step(*args, **kwargs):
        rates.append(trainer.optimizer.param_groups[0]["lr"])
        return step(*args, **kwargs)

    trainer.optimizer.step = recording_step
    for _ in range(batches):
        trainer.run_batch()
    return rates


def test_learning_rate_ramps_linearly_then_stays():
    config = tiny_config(algorithm="grpo", group_size=4, epochs=2, minibatches=2, lr=1e-3,
                         lr_warmup=6, warmup_batches=1)
    rates = recorded_lrs(Trainer(config, policy=tiny_vae(), reward=InkReward(), device="cpu"),
                         4)
    expected = [1e-3 * k / 6 for k in range(1, 7)] + [1e-3] * 6
    assert rates == pytest.approx(expected, rel=1e-12)
    plain = Trainer(tiny_config(lr=1e-3), policy=tiny_vae(), reward=InkReward(), device="cpu")
    assert recorded_lrs(plain, 3) == [1e-3, 1e-3]


def test_adams_first_step_is_scaled_down_by_the_warmup():
    """Adam's first step moves every weight by about lr whatever its gradient; the warm-up
    makes it lr / lr_warmup."""
    moves = []
    for warmup in (0, 4):
        config = tiny_config(lr=1e-3, lr_warmup=warmup, warmup_batches=0)
        trainer = Trainer(config, policy=tiny_vae(), reward=InkReward(), device="cpu")
        before = parameters(trainer.policy)
        trainer.run_batch()
        moves.append(max(float((value - before[name]).abs().max())
                         for name, value in parameters(trainer.policy).items()))
    assert moves[0] == pytest.approx(1e-3, rel=1e-3)
    assert moves[1] == pytest.approx(1e-3 / 4, rel=1e-3)


def test_resume_in_the_middle_of_the_warmup_continues_exactly(tmp_path):
    assert_resume_continues_exactly(tmp_path, algorithm="grpo", group_size=4, epochs=2,
                                    minibatches=2, lr_warmup=10, checkpoint_every=2)


def test_negative_warmup_is_refused():
    with pytest.raises(ConfigError, match="lr_warmup >= 0"):
        load_rl_config(None, ["lr_warmup=-1"])
