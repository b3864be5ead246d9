"""The interface every RL algorithm implements, and the loss terms they all share.

Losses are sums over an episode's sampled steps, averaged over the episodes of the minibatch
(the paper's ``-(1/B) sum_i A_i log p(tau_i)`` for REINFORCE), so that every term has the same
scale whatever the algorithm.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, TypeVar

import torch
from torch import Tensor, nn

from sketchrl.rl.experience import (
    Experience,
    PolicyTerms,
    categorical_entropy,
    k2_divergence,
    k3_clamped_divergence,
    k3_divergence,
    k3_of_log_ratio,
    k3_truncated_divergence,
    offset_entropy_bound,
)

if TYPE_CHECKING:
    from sketchrl.rl.config import RLConfig

ALGORITHMS: dict[str, type[Algorithm]] = {}
#: Per-step KL estimators for the ``kl_beta`` term (the config's ``kl_estimator``).
KL_ESTIMATORS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "k3": k3_divergence, "k2": k2_divergence, "k3_clamped": k3_clamped_divergence,
    "k3_truncated": k3_truncated_divergence}
A = TypeVar("A", bound=type["Algorithm"])
#: The key of the adapted ``kl_beta`` in :meth:`Algorithm.state_dict`.
KL_CONTROLLER = "kl_controller"


def register(name: str) -> Callable[[A], A]:
    """Class decorator: make an algorithm available under ``name`` (the config's
    ``algorithm``)."""

    def decorate(cls: A) -> A:
        cls.name = name
        ALGORITHMS[name] = cls
        return cls

    return decorate


def episode_mean(per_step: Tensor, mask: Tensor) -> Tensor:
    """``(1/b) sum_i sum_t per_step[i, t]`` over the sampled steps."""
    return (per_step * mask).sum() / max(len(per_step), 1)


def step_mean(values: Tensor, mask: Tensor) -> float:
    """Mean over the sampled steps, as a float (nan when there are none)."""
    count = int(mask.sum())
    return float((values * mask).sum() / count) if count else float("nan")


def clipped_surrogate(log_probs: Tensor, old_log_probs: Tensor, advantages: Tensor,
                      mask: Tensor, clip_low: float,
                      clip_high: float) -> tuple[Tensor, dict[str, float]]:
    """PPO's clipped objective as a loss, with DAPO's asymmetric clip range
    ``[1 - clip_low, 1 + clip_high]``; also the clip fraction and the approximate KL between
    the sampling and the current policy (k3)."""
    log_ratio = torch.where(mask, log_probs - old_log_probs, 0.0)
    ratio = torch.exp(log_ratio)
    clipped = ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    surrogate = torch.minimum(ratio * advantages, clipped * advantages)
    with torch.no_grad():
        active = ((ratio < 1.0 - clip_low) & (advantages < 0)) | \
            ((ratio > 1.0 + clip_high) & (advantages > 0))
        metrics = {"clip_frac": step_mean(active.float(), mask),
                   "approx_kl": step_mean(k3_of_log_ratio(log_ratio), mask)}
    return -episode_mean(surrogate, mask), metrics


class Algorithm(abc.ABC):
    """An RL algorithm: advantages from a scored batch, and a loss on the current policy.

    The trainer calls :meth:`prepare` once per batch, then :meth:`loss` for each of
    ``epochs x minibatches`` minibatches. Modules the algorithm trains besides the policy (a
    value head) are returned by :meth:`modules`; the trainer optimises and checkpoints them.
    """

    name: ClassVar[str] = ""
    #: Extra metrics the algorithm logs per batch (nan when not computed).
    metric_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: RLConfig, hidden_size: int, device: torch.device) -> None:
        self.config = config
        self.temperature = config.sampling_temperature
        self.kl_beta = config.kl_beta  # adapted by adapt_kl_beta when kl_target > 0

    @staticmethod  # noqa: B027 (every setting is valid unless an algorithm says otherwise)
    def check_config(config: RLConfig) -> None:
        """Raise ConfigError for settings this algorithm cannot run (called by RLConfig)."""

    def modules(self) -> dict[str, nn.Module]:
        """Trainable modules besides the policy (checkpointed with the run)."""
        return {}

    def observe(self, batch: Experience) -> dict[str, float]:
        """A warm-up batch (the policy does not change): e.g. fit a critic. Returns metrics."""
        return {}

    @abc.abstractmethod
    def prepare(self, batch: Experience) -> None:
        """Compute ``batch.advantages (B, T)`` (and any ``batch.extras``) without gradients."""

    @abc.abstractmethod
    def policy_loss(self, batch: Experience,
                    terms: PolicyTerms) -> tuple[Tensor, dict[str, float]]:
        """The algorithm's own loss on the minibatch ``terms.index`` and its metrics."""

    def loss(self, batch: Experience, terms: PolicyTerms) -> tuple[Tensor, dict[str, float]]:
        """:meth:`policy_loss` plus the shared terms: ``kl_beta`` times the per-step KL to the
        starting policy (the ``kl_estimator``), minus ``entropy_coef`` times the pen-state and
        mixture-weight entropy and ``offset_entropy_coef`` times the offsets' entropy bound."""
        loss, metrics = self.policy_loss(batch, terms)
        mask = batch.mask[terms.index]
        if self.config.kl_beta > 0:
            assert batch.ref_log_probs is not None, "kl_beta > 0 needs the starting policy"
            estimator = KL_ESTIMATORS[self.config.kl_estimator]
            divergence = estimator(terms.log_probs, batch.ref_log_probs[terms.index])
            loss = loss + self.kl_beta * episode_mean(divergence, mask)
        if self.config.entropy_coef > 0:
            pen, weights = categorical_entropy(terms.outputs, self.temperature,
                                               (terms.outputs.shape[-1] - 3) // 6)
            loss = loss - self.config.entropy_coef * episode_mean(pen + weights, mask)
        if self.config.offset_entropy_coef > 0:
            loss = loss - self.offset_entropy_bonus(terms, mask)
        return loss, metrics

    def offset_entropy_bonus(self, terms: PolicyTerms, mask: Tensor) -> Tensor:
        """``offset_entropy_coef`` times the offsets' entropy bound (per episode); with
        ``offset_entropy_floor``, zero unless the minibatch's mean per step is below the floor
        (decided by ``torch.where``, with no host sync and no gradient through the test)."""
        offsets = offset_entropy_bound(terms.outputs, self.temperature,
                                       (terms.outputs.shape[-1] - 3) // 6)
        bonus = self.config.offset_entropy_coef * episode_mean(offsets, mask)
        floor = self.config.offset_entropy_floor
        if floor is None:
            return bonus
        below = (offsets.detach() * mask).sum() < floor * mask.sum()
        return torch.where(below, bonus, torch.zeros_like(bonus))

    def adapt_kl_beta(self, kl_to_start: float) -> None:
        """Ziegler et al. (2019)'s adaptive KL controller, after an update batch whose policy
        was ``kl_to_start`` nats per sketch from the start: ``kl_beta`` grows when that is above
        ``kl_target`` and shrinks below it, by at most 20% of ``batch_size / kl_horizon``."""
        target = self.config.kl_target
        if target > 0 and math.isfinite(kl_to_start):
            error = min(max(kl_to_start / target - 1.0, -0.2), 0.2)
            self.kl_beta *= 1.0 + error * self.config.batch_size / self.config.kl_horizon

    def state_dict(self) -> dict[str, dict]:
        """The modules' weights and the adapted ``kl_beta``, for resuming."""
        state = {name: module.state_dict() for name, module in self.modules().items()}
        return {**state, KL_CONTROLLER: {"kl_beta": self.kl_beta}}

    def load_state_dict(self, state: dict[str, dict]) -> None:
        for name, module in self.modules().items():
            module.load_state_dict(state[name])
        if KL_CONTROLLER in state:  # absent in states written before it was added
            self.kl_beta = float(state[KL_CONTROLLER]["kl_beta"])
