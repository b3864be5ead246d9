"""Credit assignment: pure tensor functions from rewards to per-step returns and advantages.

Conventions: a batch of ``B`` episodes over ``T`` steps; ``mask (B, T)`` marks the steps the
policy sampled. Groups are consecutive blocks of ``group_size`` episodes. Dense rewards fall at
checkpoints: the step that completes the prefix of length ``k, 2k, ...`` (strictly shorter than
the sketch), and the last sampled step for the whole sketch.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Spreads below this fraction of the mean's size carry no signal (float rounding).
FLAT_SPREAD = 1e-6


def group_advantages(returns: Tensor, group_size: int, scale: str = "group",
                     eps: float = 1e-8) -> Tensor:
    """GRPO's advantages ``(r - group mean) / std`` of episode returns ``(B,)``.

    ``scale``: ``group`` divides by the group's (population) std, ``batch`` by the batch's,
    ``none`` not at all (Dr. GRPO). A group (or batch) whose returns are equal up to float
    rounding gets zero advantages rather than rounding noise scaled up.
    """
    grouped = returns.reshape(-1, group_size)
    mean = grouped.mean(dim=1, keepdim=True)
    centred = grouped - mean
    flat = grouped.std(dim=1, unbiased=False, keepdim=True) <= FLAT_SPREAD * (1 + mean.abs())
    centred = torch.where(flat, torch.zeros_like(centred), centred)
    if scale == "group":
        centred = centred / (grouped.std(dim=1, unbiased=False, keepdim=True) + eps)
    elif scale == "batch":
        std = returns.std(unbiased=False)
        centred = centred / (std + eps) if std > FLAT_SPREAD * (1 + returns.mean().abs()) \
            else torch.zeros_like(centred)
    elif scale != "none":
        raise ValueError(f"scale must be group, batch or none, got {scale!r}")
    return centred.reshape(-1)


def group_step_advantages(credit: Tensor, mask: Tensor, group_size: int,
                          scale: str = "group", eps: float = 1e-8) -> Tensor:
    """Per-step advantages ``(B, T)`` from per-step returns ``credit (B, T)``: minus the mean
    of the group's returns at the same step (over the episodes still running), divided by the
    std of the group's (``group``) or batch's (``batch``) per-step returns, or not (``none``)."""
    batch, steps = credit.shape
    weights = mask.to(credit.dtype).reshape(-1, group_size, steps)
    values = credit.reshape(-1, group_size, steps) * weights
    baseline = values.sum(dim=1, keepdim=True) / weights.sum(dim=1, keepdim=True).clamp(min=1)
    centred = (values - baseline) * weights
    if scale in ("group", "batch"):
        dims = (1, 2) if scale == "group" else (0, 1, 2)
        count = weights.sum(dim=dims, keepdim=True).clamp(min=1)
        mean = values.sum(dim=dims, keepdim=True) / count
        std = torch.sqrt((((values - mean) * weights) ** 2).sum(dim=dims, keepdim=True) / count)
        centred = centred / (std + eps)
    elif scale != "none":
        raise ValueError(f"scale must be group, batch or none, got {scale!r}")
    return centred.reshape(batch, steps)


def last_sampled_step(lengths: Tensor, steps: int) -> Tensor:
    """Index of each episode's last sampled step: its end row, or ``steps - 1`` when it ran to
    the step limit without ending."""
    return lengths.clamp(max=steps - 1)


def checkpoint_mask(lengths: Tensor, steps: int, every: int) -> Tensor:
    """``(B, steps)`` bool: the steps at which a dense reward's checkpoints fall.

    A sketch of ``L`` rows is scored at the prefixes of ``k, 2k, ... < L`` rows (completed at
    steps ``k - 1, 2k - 1, ...``) and as a whole at its last sampled step; this is the order of
    :func:`sketchrl.rewards.dense.checkpoint_lengths`.
    """
    t = torch.arange(steps, device=lengths.device)
    periodic = ((t + 1) % every == 0) & ((t + 1).unsqueeze(0) < lengths.unsqueeze(1))
    return periodic | (t.unsqueeze(0) == last_sampled_step(lengths, steps).unsqueeze(1))


def place_rewards(flat_rewards: Tensor, where: Tensor) -> Tensor:
    """Scatter rewards listed episode by episode, step by step into a ``(B, T)`` zero matrix."""
    placed = torch.zeros(where.shape, dtype=flat_rewards.dtype, device=where.device)
    placed[where] = flat_rewards.to(where.device)
    return placed


def final_rewards(returns: Tensor, lengths: Tensor, steps: int) -> Tensor:
    """``(B, T)`` with each episode's return at its last sampled step (a sparse reward)."""
    placed = torch.zeros(len(returns), steps, dtype=returns.dtype, device=returns.device)
    placed.scatter_(1, last_sampled_step(lengths, steps).unsqueeze(1).to(returns.device),
                    returns.unsqueeze(1))
    return placed


def _discount_matrix(size: int, factor: float, device: torch.device) -> Tensor:
    """``D[j, k] = factor^(k - j)`` for ``k >= j``, else 0 (float64)."""
    index = torch.arange(size, device=device)
    power = (index.unsqueeze(0) - index.unsqueeze(1)).to(torch.float64)
    matrix = torch.pow(torch.tensor(factor, dtype=torch.float64, device=device), power.clamp(min=0))
    return torch.where(power >= 0, matrix, torch.zeros_like(matrix))


def reward_to_go(rewards: Tensor, checkpoints: Tensor, gamma: float,
                 normalize: bool = False) -> Tensor:
    """Step t's return: the checkpoint rewards at or after t, discounted per checkpoint.

    ``G_t = sum_{j >= j(t)} gamma^(j - j(t)) r_j`` where ``j(t)`` is the first checkpoint at or
    after step t. With ``normalize`` the sum is divided by its weights (a weighted mean of the
    rewards still to come, with no bonus for more checkpoints). ``rewards (B, T)`` are placed at
    the ``checkpoints (B, T)`` steps. Steps after the last checkpoint get 0.
    """
    counts = checkpoints.sum(dim=1)
    width = max(int(counts.max()), 1) if counts.numel() else 1
    position = torch.cumsum(checkpoints.long(), dim=1) - 1
    per_checkpoint = torch.zeros(len(rewards), width, dtype=torch.float64, device=rewards.device)
    rows, steps = checkpoints.nonzero(as_tuple=True)
    per_checkpoint[rows, position[rows, steps]] = rewards[rows, steps].to(torch.float64)
    exists = torch.arange(width, device=rewards.device).unsqueeze(0) < counts.unsqueeze(1)
    discount = _discount_matrix(width, gamma, rewards.device)
    suffix = per_checkpoint @ discount.t()
    if normalize:
        suffix = suffix / (exists.to(torch.float64) @ discount.t()).clamp(min=1e-300)
    upcoming = (position + 1 - checkpoints.long()).clamp(max=width - 1)  # checkpoints before t
    credit = suffix.gather(1, upcoming)
    after_last = torch.cumsum(checkpoints.long(), dim=1) >= counts.unsqueeze(1)
    after_last &= ~checkpoints
    return torch.where(after_last, 0.0, credit).to(rewards.dtype)


def gae(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float,
        lam: float) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over ``(B, T)`` steps (Schulman et al. 2016).

    ``delta_t = r_t + gamma V_{t+1} - V_t`` (the value after an episode's last step is 0) and
    ``A_t = sum_{k >= t} (gamma lam)^(k - t) delta_k``, computed as one matrix product.
    Returns ``(advantages, value targets = advantages + V)``, zero where ``mask`` is False.
    """
    weights = mask.to(values.dtype)
    current = values * weights
    following = torch.cat([current[:, 1:], torch.zeros_like(current[:, :1])], dim=1)
    delta = (rewards + gamma * following - current) * weights
    decay = _discount_matrix(rewards.shape[1], gamma * lam, rewards.device)
    advantages = (delta.to(torch.float64) @ decay.t()).to(values.dtype) * weights
    return advantages, (advantages + current) * weights


def whiten_steps(values: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """``values (B, T)`` standardised over the ``mask``ed steps (0 elsewhere)."""
    weights = mask.to(values.dtype)
    count = weights.sum().clamp(min=1)
    mean = (values * weights).sum() / count
    std = torch.sqrt((((values - mean) * weights) ** 2).sum() / count)
    return (values - mean) / (std + eps) * weights


def explained_variance(predicted: Tensor, target: Tensor, mask: Tensor) -> float:
    """``1 - Var(target - predicted) / Var(target)`` over the masked steps (nan if Var is 0)."""
    target, predicted = target[mask], predicted[mask]
    variance = target.var(unbiased=False)
    if variance <= 0:
        return float("nan")
    return float(1.0 - (target - predicted).var(unbiased=False) / variance)
