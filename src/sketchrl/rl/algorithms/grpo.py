"""GRPO (Shao et al. 2024) with DAPO's asymmetric clip and Dr. GRPO's unscaled option.

Each batch holds groups of episodes (a VAE's group shares one z; a completion's group shares
one prefix); an episode's advantage is its return minus its group's mean, divided by the
group's std (``scale_rewards = "group"``), the batch's (``"batch"``) or nothing (``"none"``).
The loss is the clipped importance-ratio objective against the sampling policy, for ``epochs``
passes over the batch in ``minibatches``; the shared KL (``kl_beta``, k3 per step) and entropy
terms come from the base class.
"""

from __future__ import annotations

from torch import Tensor

from sketchrl.rl.algorithms.base import Algorithm, clipped_surrogate, register
from sketchrl.rl.credit import group_advantages, group_step_advantages, reward_to_go
from sketchrl.rl.experience import Experience, PolicyTerms


@register("grpo")
class GRPO(Algorithm):
    """Group-relative advantages with a clipped ratio (see the module docstring)."""

    metric_names = ("clip_frac", "approx_kl")

    def prepare(self, batch: Experience) -> None:
        config, mask = self.config, batch.mask
        if config.credit == "episode":
            advantages = group_advantages(batch.returns.to(mask.device), batch.group_size,
                                          config.scale_rewards)
            batch.advantages = advantages.reshape(-1, 1) * mask
        else:
            credit = reward_to_go(batch.step_rewards, batch.checkpoints, config.gamma,
                                  config.dense_normalize)
            batch.advantages = group_step_advantages(credit, mask, batch.group_size,
                                                     config.scale_rewards)

    def policy_loss(self, batch: Experience,
                    terms: PolicyTerms) -> tuple[Tensor, dict[str, float]]:
        index = terms.index
        return clipped_surrogate(terms.log_probs, batch.old_log_probs[index],
                                 batch.advantages[index], batch.mask[index],
                                 self.config.clip_low, self.config.clip_high)
