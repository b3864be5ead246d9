"""Weight averaging (``ema_half_life``): the average's arithmetic, that it leaves training
unchanged, what the run's files hold, and an exact resume."""

from __future__ import annotations

import pytest
import torch

from sketchrl.errors import ConfigError
from sketchrl.models import load_model
from sketchrl.rl import Trainer, load_rl_config, train
from tests.test_rl_trainer import (
    InkReward,
    assert_resume_continues_exactly,
    encoder_parameter_names,
    parameters,
    read_metrics,
    tiny_config,
    tiny_vae,
)


def assert_same_weights(model: torch.nn.Module, expected: dict[str, torch.Tensor],
                        **tolerance) -> None:
    tolerance = tolerance or {"rtol": 0, "atol": 0}
    actual = parameters(model)
    assert actual.keys() == expected.keys()
    for name, value in expected.items():
        torch.testing.assert_close(actual[name], value, **tolerance)


@pytest.mark.parametrize("algorithm", ["reinforce", "grpo"])
def test_average_moves_towards_each_update_by_the_half_life(algorithm):
    """By hand: the average starts at the starting weights and after each update batch (not
    after a warm-up batch) becomes ``d x average + (1 - d) x policy``, d = 0.5 ** (8 / 16)."""
    config = tiny_config(algorithm=algorithm, group_size=4, ema_half_life=16.0,
                         warmup_batches=1)
    trainer = Trainer(config, policy=tiny_vae(), reward=InkReward(), device="cpu")
    decay = 0.5 ** (8 / 16)
    expected = parameters(trainer.policy)
    for _ in range(4):
        row = trainer.run_batch()
        if row["updated"]:
            expected = {name: decay * value + (1 - decay) * parameters(trainer.policy)[name]
                        for name, value in expected.items()}
        assert_same_weights(trainer.output_policy, expected, rtol=1e-6, atol=1e-7)
    assert trainer.output_policy is not trainer.policy
    moved = [name for name, value in parameters(trainer.policy).items()
             if not torch.equal(value, expected[name])]
    assert moved  # the average is not the policy


def test_without_a_half_life_the_output_is_the_policy():
    trainer = Trainer(tiny_config(), policy=tiny_vae(), reward=InkReward(), device="cpu")
    assert trainer.average is None and trainer.output_policy is trainer.policy


def test_training_is_unchanged_and_the_model_files_hold_the_average(tmp_path):
    plain, averaged = tmp_path / "plain", tmp_path / "averaged"
    train(tiny_config(), plain, policy=tiny_vae(), reward=InkReward(), progress=False)
    train(tiny_config(ema_half_life=24.0), averaged, policy=tiny_vae(), reward=InkReward(),
          progress=False)
    assert read_metrics(plain / "metrics.csv") == read_metrics(averaged / "metrics.csv")
    assert_same_weights(load_model(averaged / "last_policy"), parameters(load_model(plain)))
    average, last = load_model(averaged), parameters(load_model(plain))
    start = parameters(tiny_vae())
    encoder = encoder_parameter_names(tiny_vae())
    for name, value in parameters(average).items():
        if name in encoder:  # frozen: the average of the start is the start
            torch.testing.assert_close(value, start[name], rtol=0, atol=0)
    assert any(not torch.equal(value, last[name])
               for name, value in parameters(average).items() if name not in encoder)


def test_resume_continues_the_average_exactly(tmp_path):
    """Both the average (the model files) and the last weights resume bit for bit."""
    assert_resume_continues_exactly(tmp_path, algorithm="grpo", group_size=4, epochs=2,
                                    ema_half_life=20.0)
    for run in ("straight", "resumed"):
        assert (tmp_path / run / "last_policy" / "model.safetensors").exists()


def test_negative_half_life_is_refused():
    with pytest.raises(ConfigError, match="ema_half_life must be >= 0"):
        load_rl_config(None, ["ema_half_life=-1"])
