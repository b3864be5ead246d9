"""What one batch of fine-tuning carries from sampling to the update, and the policy's terms.

:class:`Experience` is a scored batch: the rollout, its rewards per step and per episode, the
sampling policy's log-probabilities (the "old" policy of an importance ratio) and, when a KL
term needs them, the starting policy's. :func:`policy_terms` evaluates the current policy on
the sampled episodes by teacher forcing (one fused pass for the plain LSTM), and
:func:`categorical_entropy` gives the exact entropy of the pen state and mixture weights, and
:func:`offset_entropy_bound` a lower bound on the entropy of the pen offsets.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor

from sketchrl.models import Rollout, SketchRNN
from sketchrl.models.mixture import (
    LOG_2PI,
    RHO_MARGIN,
    Temperature,
    apply_temperature,
    row_log_prob,
    split_output,
)


@dataclasses.dataclass
class Experience:
    """One scored batch of ``B`` episodes over ``T`` steps.

    Attributes:
        rollout: the sampled episodes (``mask`` marks the steps the policy sampled).
        returns: ``(B,)`` each episode's return as the reward defines it (the sparse score, or
            the dense return G).
        step_rewards: ``(B, T)`` rewards at the steps they fall: a sparse score at the last
            sampled step, a dense reward's checkpoint scores at their checkpoints.
        checkpoints: ``(B, T)`` bool, where ``step_rewards`` fall.
        old_log_probs: ``(B, T)`` log-probabilities under the sampling policy (no gradient).
        ref_log_probs: ``(B, T)`` under the starting policy, or None when not computed.
        group_size: episodes per group (consecutive episodes form a group).
        advantages: ``(B, T)`` set by the algorithm's ``prepare``.
        extras: whatever else an algorithm keeps per batch (e.g. values and their targets).
        start_samples: sketches the starting policy drew for the forward KL term, or None.
    """

    rollout: Rollout
    returns: Tensor
    step_rewards: Tensor
    checkpoints: Tensor
    old_log_probs: Tensor
    ref_log_probs: Tensor | None
    group_size: int
    advantages: Tensor | None = None
    extras: dict[str, Tensor] = dataclasses.field(default_factory=dict)
    start_samples: Rollout | None = None

    @property
    def mask(self) -> Tensor:
        return self.rollout.mask

    def __len__(self) -> int:
        return len(self.returns)


@dataclasses.dataclass
class PolicyTerms:
    """The current policy on some episodes of a batch (``index``), with gradients."""

    index: Tensor  # (b,) which episodes of the batch
    log_probs: Tensor  # (b, T) per sampled step, 0 elsewhere
    outputs: Tensor  # (b, T, 6M + 3) raw decoder outputs


def policy_terms(policy: SketchRNN, rollout: Rollout, temperature: Temperature,
                 index: Tensor | None = None) -> PolicyTerms:
    """Teacher-force ``policy`` on the episodes ``index`` of ``rollout`` (all when None)."""
    if index is None:
        index = torch.arange(len(rollout), device=rollout.strokes.device)
    strokes, lengths = rollout.strokes[index], rollout.lengths[index]
    z = None if rollout.z is None else rollout.z[index]
    outputs, _ = policy.teacher_forcing_outputs(strokes, lengths, z)
    return PolicyTerms(index, masked_log_probs(outputs, strokes, rollout.mask[index],
                                               temperature, policy.config.num_mixture), outputs)


def masked_log_probs(outputs: Tensor, strokes: Tensor, mask: Tensor, temperature: Temperature,
                     num_mixture: int) -> Tensor:
    """Log-probabilities ``(B, T)`` of ``strokes`` under raw ``outputs`` (0 where not ``mask``)."""
    params = apply_temperature(split_output(outputs, num_mixture), temperature)
    return torch.where(mask, row_log_prob(params, strokes), 0.0)


def categorical_entropy(outputs: Tensor, temperature: Temperature,
                        num_mixture: int) -> tuple[Tensor, Tensor]:
    """Exact entropies ``(B, T)`` of the tempered pen-state and mixture-weight distributions."""
    params = apply_temperature(split_output(outputs, num_mixture), temperature)

    def entropy(log_probs: Tensor) -> Tensor:
        return -(log_probs.exp() * log_probs).sum(dim=-1)

    return entropy(params.pen_log_probs), entropy(params.log_pi)


def offset_entropy_bound(outputs: Tensor, temperature: Temperature,
                         num_mixture: int) -> Tensor:
    """Per step ``(B, T)``, the mixture-weighted entropy of the tempered offset Gaussians,
    ``sum_k pi_k (log 2 pi e + log sigma_x + log sigma_y + log(1 - rho^2) / 2)``: a lower bound
    on the entropy of the offset mixture (which has no closed form) that falls without limit as
    the policy shrinks its sigmas or pushes rho to +-1."""
    params = apply_temperature(split_output(outputs, num_mixture), temperature)
    rho = params.rho.clamp(-1.0 + RHO_MARGIN, 1.0 - RHO_MARGIN)
    component = (LOG_2PI + 1.0 + params.log_sigma_x + params.log_sigma_y
                 + 0.5 * torch.log1p(-rho.square()))
    return (params.log_pi.exp() * component).sum(dim=-1)


def forward_kl_terms(policy: SketchRNN, start_samples: Rollout, temperature: Temperature,
                     index: Tensor) -> tuple[Tensor, float]:
    """The forward KL(start || policy) on the starting policy's sketches ``index``: the loss
    ``-(1/b) sum_i sum_t log p(x_it)`` (the KL up to the start's entropy, a constant) and the
    KL's estimate ``(1/b) sum_i sum_t (log p_start - log p)``, in nats per sketch."""
    log_probs = policy_terms(policy, start_samples, temperature, index).log_probs.sum(dim=1)
    start_log_probs = start_samples.total_log_prob()[index]
    estimate = float((start_log_probs - log_probs.detach()).mean())
    return -log_probs.mean(), estimate


def k2_divergence(log_probs: Tensor, ref_log_probs: Tensor) -> Tensor:
    """Per-step k2 estimate ``(log p - log p_ref)^2 / 2`` of KL(policy || reference). As a loss
    on the policy's own samples its gradient is the reverse KL's, ``E_p[(log p - log p_ref)
    grad log p]``, where k3's is the forward KL's weighted by ``p_ref / p`` (Schulman 2020)."""
    return 0.5 * (log_probs - ref_log_probs) ** 2


def k3_divergence(log_probs: Tensor, ref_log_probs: Tensor) -> Tensor:
    """Per-step k3 estimate of KL(policy || reference) from samples of the policy:
    ``r - 1 - log r`` with ``r = p_ref / p`` (non-negative, unbiased; Schulman 2020)."""
    return k3_of_log_ratio(ref_log_probs - log_probs)


def k3_of_log_ratio(log_ratio: Tensor) -> Tensor:
    """``r - 1 - log r`` from ``log r``: the formula of k3 and of its bounded forms."""
    return torch.expm1(log_ratio) - log_ratio


#: Largest importance weight ``p_ref / p`` of :func:`k3_truncated_divergence`'s gradient.
K3_WEIGHT_BOUND = 10.0


def k3_truncated_divergence(log_probs: Tensor, ref_log_probs: Tensor) -> Tensor:
    """:func:`k3_divergence` continued as a straight line past ``r = p_ref / p = 10``. k3's
    gradient ``(1 - r) grad log p`` weights each step by ``r``; here the weight stops at 10
    (as V-trace truncates importance weights), so a step far in the policy's tail still
    pulls back towards the start, with a bounded force."""
    log_ratio = ref_log_probs - log_probs
    bound = math.log(K3_WEIGHT_BOUND)
    inside = log_ratio.clamp(max=bound)
    return k3_of_log_ratio(inside) + (log_ratio - inside) * (K3_WEIGHT_BOUND - 1.0)


#: Bounds of :func:`k3_clamped_divergence`: the log ratio, then the per-step estimate.
K3_LOG_RATIO_BOUND = 20.0
K3_STEP_BOUND = 10.0


def k3_clamped_divergence(log_probs: Tensor, ref_log_probs: Tensor) -> Tensor:
    """:func:`k3_divergence` with the log ratio clamped to +-20 and the per-step estimate to at
    most 10 (verl's ``low_var_kl``): a step the policy has made far less likely than the start
    (``log p_ref - log p`` above about 2.6) adds a constant 10 and no gradient, where k3's
    exponential would give it an unbounded one."""
    log_ratio = (ref_log_probs - log_probs).clamp(-K3_LOG_RATIO_BOUND, K3_LOG_RATIO_BOUND)
    return k3_of_log_ratio(log_ratio).clamp(max=K3_STEP_BOUND)
