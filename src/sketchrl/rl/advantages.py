"""Advantage estimators of REINFORCE: tiny pure functions from returns to advantages.

Each takes returns of shape ``(..., n)`` (the episodes of one group along the last axis) and
gives advantages of the same shape, each row on its own.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from sketchrl.errors import ConfigError

AdvantageFn = Callable[[torch.Tensor], torch.Tensor]


def whiten(returns: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """The paper's within-batch normalisation: ``(r - mean) / (std + eps)``.

    Uses the population std (as NumPy's default). A batch whose returns are equal up to float
    rounding carries no signal and gets zero advantages (not rounding noise blown up to +-1).
    """
    mean = returns.mean(dim=-1, keepdim=True)
    std = returns.std(dim=-1, unbiased=False, keepdim=True)
    flat = std <= 1e-6 * (1.0 + mean.abs())
    return torch.where(flat, torch.zeros_like(returns), (returns - mean) / (std + eps))


def leave_one_out(returns: torch.Tensor) -> torch.Tensor:
    """RLOO baseline: each return minus the mean of the *other* returns in the batch."""
    n = returns.shape[-1]
    if n < 2:
        return torch.zeros_like(returns)
    return returns * n / (n - 1) - returns.sum(dim=-1, keepdim=True) / (n - 1)


def mean_baseline(returns: torch.Tensor) -> torch.Tensor:
    """Returns minus their batch mean, without scaling."""
    return returns - returns.mean(dim=-1, keepdim=True)


ADVANTAGES: dict[str, AdvantageFn] = {
    "whiten": whiten,
    "leave_one_out": leave_one_out,
    "mean": mean_baseline,
}


def get_advantage_fn(name: str) -> AdvantageFn:
    """Look up an advantage estimator by name."""
    try:
        return ADVANTAGES[name]
    except KeyError:
        raise ConfigError(
            f"unknown advantage estimator {name!r}; valid: {', '.join(sorted(ADVANTAGES))}"
        ) from None
