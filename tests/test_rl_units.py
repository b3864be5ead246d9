"""Advantage estimators and the RL config: pure functions with hand-checked values."""

from __future__ import annotations

import pytest
import torch

from sketchrl.errors import ConfigError
from sketchrl.rl import RLConfig, apply_overrides, leave_one_out, load_rl_config, whiten
from sketchrl.rl.advantages import get_advantage_fn, mean_baseline


def test_whiten_has_zero_mean_unit_std_and_keeps_order():
    returns = torch.tensor([0.1, 0.5, 0.2, 0.9])
    advantages = whiten(returns)
    assert advantages.mean().abs() < 1e-6
    assert advantages.std(unbiased=False) == pytest.approx(1.0, abs=1e-5)
    assert torch.equal(advantages.argsort(), returns.argsort())
    # (0.1 - 0.425) / population std 0.3112
    assert advantages[0].item() == pytest.approx((0.1 - 0.425) / 0.311247, rel=1e-4)


def test_whiten_of_identical_returns_is_zero_not_nan():
    advantages = whiten(torch.full((16,), 0.7))
    assert torch.all(advantages == 0)


def test_leave_one_out_hand_values():
    returns = torch.tensor([1.0, 2.0, 6.0])
    # 1 - (2+6)/2 = -3, 2 - (1+6)/2 = -1.5, 6 - (1+2)/2 = 4.5
    assert torch.allclose(leave_one_out(returns), torch.tensor([-3.0, -1.5, 4.5]))
    assert torch.allclose(mean_baseline(returns), torch.tensor([-2.0, -1.0, 3.0]))


def test_unknown_advantage_lists_valid_names():
    with pytest.raises(ConfigError, match="leave_one_out"):
        get_advantage_fn("gae")


def test_defaults_are_the_papers():
    config = RLConfig()
    assert (config.batch_size, config.lr, config.temperature) == (16, 1e-5, 0.5)
    assert (config.max_len, config.warmup_batches, config.grad_clip) == (250, 3, 1.0)
    assert config.num_batches == 312


def test_toml_config_with_reward_options_and_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        'model = "sketchrnn:bird"\nreward = "ssim"\nepisodes = 64\ndense_every = 25\n'
        '[reward_options]\ntarget = "quickdraw:bird/simplified"\ntarget_index = 3\n'
    )
    config = load_rl_config(path, ["gamma=0.9", "reward.target_index=5", "share_z=false",
                                   "dense_normalize=true"])
    assert config.episodes == 64 and config.dense_every == 25 and config.gamma == 0.9
    assert config.share_z is False and config.dense_normalize is True
    assert config.reward_options == {"target": "quickdraw:bird/simplified", "target_index": 5}
    quoted = load_rl_config(path, ['algorithm="grpo"', "kl_estimator='k2'", "reward=ssim"])
    assert (quoted.algorithm, quoted.kl_estimator, quoted.reward) == ("grpo", "k2", "ssim")


def test_config_json_round_trip(tmp_path):
    config = apply_overrides(RLConfig(), ["reward=ssim", "reward.target=x.png", "lr=0.001"])
    config.save_json(tmp_path / "rl_config.json")
    assert RLConfig.load_json(tmp_path / "rl_config.json") == config


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["gamma=1.5"], "gamma"),
        (["episodes=8"], "episodes"),
        (["batch_size=1"], "batch_size"),
        (["advantage=ppo"], "whiten"),
        (["lerning_rate=1"], "valid keys"),
        (["lr=fast"], "lr"),
        (["episodes=48", "warmup_batches=3"], "warm-up"),
        (["nonsense"], "KEY=VALUE"),
    ],
)
def test_bad_config_values_say_how_to_fix(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_rl_config(None, overrides)


def test_missing_and_invalid_toml_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_rl_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("model = \n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_rl_config(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("modle = 'x'\n")
    with pytest.raises(ConfigError, match="modle"):
        load_rl_config(unknown)
