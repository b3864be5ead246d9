"""REINFORCE as the SketchRL paper has it: ``loss = -(1/B) sum_i A_i log p(tau_i)``.

``A_i`` is the episode's return normalised within its group (the paper: one group, the whole
batch of 16, whitened), or per step with ``credit = "reward_to_go"``. ``kl_coef`` subtracts the
sampled KL to the starting policy from each return. One on-policy step per batch.
"""

from __future__ import annotations

from torch import Tensor

from sketchrl.errors import ConfigError
from sketchrl.rl.advantages import get_advantage_fn
from sketchrl.rl.algorithms.base import Algorithm, episode_mean, register
from sketchrl.rl.credit import group_step_advantages, reward_to_go
from sketchrl.rl.experience import Experience, PolicyTerms

#: Per-step counterparts of the episode advantage estimators (reward-to-go credit).
STEP_SCALES = {"whiten": "group", "mean": "none"}


@register("reinforce")
class Reinforce(Algorithm):
    """The paper's method (see the module docstring)."""

    @staticmethod
    def check_config(config) -> None:
        if (config.epochs, config.minibatches) != (1, 1):
            raise ConfigError("reinforce takes one on-policy step per batch: use epochs = 1 "
                              "and minibatches = 1, or algorithm = grpo / ppo")
        if config.max_approx_kl > 0:
            raise ConfigError("max_approx_kl stops a batch's later optimiser steps; reinforce "
                              "takes one step per batch: use algorithm = grpo / ppo")
        if config.credit == "reward_to_go" and config.advantage not in STEP_SCALES:
            raise ConfigError(f"credit = reward_to_go works with advantage = "
                              f"{' or '.join(STEP_SCALES)}, not {config.advantage}")

    def prepare(self, batch: Experience) -> None:
        config, mask = self.config, batch.mask
        penalty = None
        if config.kl_coef > 0:
            penalty = config.kl_coef * (batch.old_log_probs - batch.ref_log_probs) * mask
        if config.credit == "episode":
            returns = batch.returns.to(mask.device)
            if penalty is not None:
                returns = returns - penalty.sum(dim=1)
            advantages = get_advantage_fn(config.advantage)(returns.view(-1, batch.group_size))
            batch.advantages = advantages.reshape(-1, 1) * mask
            return
        credit = reward_to_go(batch.step_rewards, batch.checkpoints, config.gamma,
                              config.dense_normalize)
        if penalty is not None:  # the KL of the steps still to come
            credit = credit - penalty.flip(1).cumsum(1).flip(1)
        batch.advantages = group_step_advantages(credit, mask, batch.group_size,
                                                 STEP_SCALES[config.advantage])

    def policy_loss(self, batch: Experience,
                    terms: PolicyTerms) -> tuple[Tensor, dict[str, float]]:
        advantages = batch.advantages[terms.index]
        return -episode_mean(advantages * terms.log_probs, batch.mask[terms.index]), {}
