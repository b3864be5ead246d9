"""PPO (Schulman et al. 2017), the actor-critic the SketchRL paper names as future work.

A value head reads the decoder's hidden state at each step (detached: the critic does not move
the policy's weights); advantages come from GAE(lambda) over the per-step rewards (a sparse
score at the last step, or a dense reward's checkpoint scores where they fall, discounted by
``gamma`` per checkpoint interval), standardised over the batch; the loss is the clipped
surrogate plus the clipped value loss, for several epochs per batch.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sketchrl.rl.algorithms.base import Algorithm, clipped_surrogate, register
from sketchrl.rl.credit import explained_variance, gae, whiten_steps
from sketchrl.rl.experience import Experience, PolicyTerms


class ValueHead(nn.Module):
    """``V(h_t)``: a small MLP on the decoder's cell output."""

    def __init__(self, hidden_size: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden_size, width), nn.Tanh(), nn.Linear(width, 1))

    def forward(self, hidden: Tensor) -> Tensor:
        return self.net(hidden).squeeze(-1)


@register("ppo")
class PPO(Algorithm):
    """Actor-critic with GAE and clipped policy and value losses."""

    metric_names = ("clip_frac", "approx_kl", "value_loss", "explained_variance")

    def __init__(self, config, hidden_size: int, device: torch.device) -> None:
        super().__init__(config, hidden_size, device)
        with torch.random.fork_rng(devices=[]):  # its weights from the run's seed alone
            torch.manual_seed(config.seed)
            self.value_head = ValueHead(hidden_size, config.value_hidden).to(device)
        self.critic_optimizer = torch.optim.Adam(self.value_head.parameters(), lr=config.value_lr)
        self._explained = float("nan")

    def modules(self) -> dict[str, nn.Module]:
        return {"value_head": self.value_head}

    def state_dict(self) -> dict[str, dict]:
        return {**super().state_dict(), "critic_optimizer": self.critic_optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, dict]) -> None:
        super().load_state_dict(state)
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])

    def step_rewards(self, batch: Experience) -> Tensor:
        """Rewards per step; a normalised dense reward divides each by the checkpoint count."""
        rewards = batch.step_rewards
        if self.config.dense_normalize:
            counts = batch.checkpoints.sum(dim=1, keepdim=True).clamp(min=1)
            rewards = rewards / counts
        return rewards

    def observe(self, batch: Experience) -> dict[str, float]:
        """Fit the value head to the batch's Monte-Carlo returns (``epochs`` Adam steps)."""
        mask = batch.mask
        gamma = self.discount
        _, returns = gae(self.step_rewards(batch), torch.zeros_like(batch.step_rewards), mask,
                         gamma, 1.0)
        count = mask.sum().clamp(min=1)
        losses = []
        for _ in range(self.config.epochs * self.config.minibatches):
            values = self.value_head(batch.rollout.hidden)
            loss = 0.5 * (((values - returns) ** 2) * mask).sum() / count
            self.critic_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.critic_optimizer.step()
            losses.append(float(loss.detach()))
        return {"value_loss": sum(losses) / len(losses)}

    @property
    def discount(self) -> float:
        """Discount per decoder step: ``gamma`` per checkpoint interval of a dense reward."""
        config = self.config
        return config.gamma ** (1.0 / config.dense_every) if config.dense_every else config.gamma

    def prepare(self, batch: Experience) -> None:
        config, mask = self.config, batch.mask
        hidden = batch.rollout.hidden
        with torch.no_grad():
            values = self.value_head(hidden) * mask
        advantages, targets = gae(self.step_rewards(batch), values, mask, self.discount,
                                  config.gae_lambda)
        batch.extras.update(values=values, targets=targets)
        batch.advantages = whiten_steps(advantages, mask)
        self._explained = explained_variance(values, targets, mask)

    def policy_loss(self, batch: Experience,
                    terms: PolicyTerms) -> tuple[Tensor, dict[str, float]]:
        config, index = self.config, terms.index
        mask = batch.mask[index]
        loss, metrics = clipped_surrogate(terms.log_probs, batch.old_log_probs[index],
                                          batch.advantages[index], mask,
                                          config.clip_low, config.clip_high)
        values = self.value_head(batch.rollout.hidden[index])
        old, targets = batch.extras["values"][index], batch.extras["targets"][index]
        clipped = old + (values - old).clamp(-config.value_clip, config.value_clip)
        per_step = 0.5 * torch.maximum((values - targets) ** 2, (clipped - targets) ** 2)
        count = mask.sum().clamp(min=1)
        value_loss = (per_step * mask).sum() / count
        metrics.update(value_loss=float(value_loss.detach()), explained_variance=self._explained)
        return loss + config.value_coef * value_loss, metrics
