"""The forward KL(start || policy) term: its estimate, its pull back to the starting policy,
its logs, and an exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sketchrl.errors import ConfigError
from sketchrl.rl import Trainer, load_rl_config
from sketchrl.rl.experience import forward_kl_terms, policy_terms
from tests.test_rl_trainer import (
    InkReward,
    assert_resume_continues_exactly,
    tiny_config,
    tiny_vae,
)


class ConstantReward(InkReward):
    """Every sketch scores the same: group advantages vanish, only the KL terms act."""

    def __call__(self, images: torch.Tensor, sketches) -> torch.Tensor:
        return torch.ones(len(images))


def perturb(model: torch.nn.Module, scale: float = 0.3, seed: int = 5) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.decoder_parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))


def test_estimate_is_the_mean_log_ratio_and_zero_at_the_start():
    config = tiny_config(algorithm="grpo", group_size=4, forward_kl_beta=1.0,
                         forward_kl_episodes=6)
    trainer = Trainer(config, policy=tiny_vae().double(), reward=InkReward(), device="cpu")
    samples = trainer.sample_start(trainer.batch_generator())
    index = torch.tensor([0, 2, 3, 5])
    loss, estimate = forward_kl_terms(trainer.policy, samples, trainer.temperature, index)
    assert abs(estimate) < 1e-9  # the policy is still the starting policy
    perturb(trainer.policy)
    loss, estimate = forward_kl_terms(trainer.policy, samples, trainer.temperature, index)
    start = (samples.log_probs * samples.mask)[index].sum(dim=1)
    with torch.no_grad():
        moved = policy_terms(trainer.policy, samples, trainer.temperature, index).log_probs
    moved = moved.sum(dim=1)
    assert estimate == pytest.approx(float((start - moved).mean()), rel=1e-9)
    assert float(loss.detach()) == pytest.approx(float(-moved.mean()), rel=1e-9)


def test_forward_kl_pulls_a_moved_policy_back_to_the_start():
    """With a constant reward only the term acts: the KL on held-out sketches of the start
    falls."""
    config = tiny_config(algorithm="grpo", group_size=4, forward_kl_beta=1.0,
                         forward_kl_episodes=32, episodes=8 * 16, warmup_batches=0)
    trainer = Trainer(config, policy=tiny_vae(), reward=ConstantReward(), device="cpu")
    perturb(trainer.policy)
    generator = torch.Generator().manual_seed(9)
    start = trainer.start_policy
    held_out = start.sample(256, temperature=trainer.temperature, max_len=config.max_len,
                            z=start.sample_prior_z(256, generator=generator),
                            generator=generator)

    def held_out_kl() -> float:
        with torch.no_grad():
            return forward_kl_terms(trainer.policy, held_out, trainer.temperature,
                                    torch.arange(256))[1]

    before = held_out_kl()
    rows = [trainer.run_batch() for _ in range(config.num_batches)]
    assert before > 1.0 and held_out_kl() < 0.5 * before
    assert all(np.isfinite(row["forward_kl"]) for row in rows)


def test_forward_kl_logs_and_resumes_exactly(tmp_path):
    rows = assert_resume_continues_exactly(
        tmp_path, algorithm="ppo", epochs=2, minibatches=2, forward_kl_beta=0.5,
        forward_kl_episodes=4, checkpoint_every=2)
    updated = [row for row in rows if row["updated"] == "1"]
    assert updated and all(np.isfinite(float(row["forward_kl"])) for row in updated)


def test_runs_without_the_term_neither_sample_nor_log_it(monkeypatch):
    trainer = Trainer(tiny_config(warmup_batches=0), policy=tiny_vae(), reward=InkReward(),
                      device="cpu")
    monkeypatch.setattr(trainer, "sample_start", lambda generator: pytest.fail("sampled"))
    assert "forward_kl" not in trainer.run_batch()


def test_forward_kl_episodes_must_split_over_minibatches():
    with pytest.raises(ConfigError, match="forward_kl_episodes must be a multiple"):
        load_rl_config(None, ["algorithm=grpo", "batch_size=32", "minibatches=4",
                              "forward_kl_beta=0.1", "forward_kl_episodes=6"])
    with pytest.raises(ConfigError, match="forward_kl_beta must be >= 0"):
        load_rl_config(None, ["forward_kl_beta=-1"])
    load_rl_config(None, ["algorithm=grpo", "batch_size=64", "minibatches=32"])  # term off
