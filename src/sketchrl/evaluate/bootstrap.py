"""Seeded percentile-bootstrap confidence intervals for per-sample metrics."""

from __future__ import annotations

import dataclasses

import numpy as np

from sketchrl.errors import DataError

#: Resamples drawn by default.
N_RESAMPLES = 1000
#: Default two-sided confidence level.
CONFIDENCE = 0.95
#: Resamples drawn per vectorized block (bounds memory at block * n floats).
_BLOCK = 256


@dataclasses.dataclass(frozen=True)
class ConfidenceInterval:
    """The statistic on the full sample and its percentile-bootstrap interval."""

    estimate: float
    low: float
    high: float
    confidence: float = CONFIDENCE

    @property
    def width(self) -> float:
        return self.high - self.low


def bootstrap_mean_ci(
    values: np.ndarray,
    *,
    n_resamples: int = N_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> ConfidenceInterval:
    """Mean of ``values`` with a percentile-bootstrap interval (resampling with replacement)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(values) == 0:
        raise DataError("cannot bootstrap an empty set of values")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence}: use a level in (0, 1), e.g. 0.95")
    if n_resamples < 1:
        raise ValueError(f"n_resamples={n_resamples}: use at least 1 (e.g. 1000)")
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, _BLOCK):
        block = min(_BLOCK, n_resamples - start)
        indices = rng.integers(0, len(values), size=(block, len(values)))
        means[start : start + block] = values[indices].mean(axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return ConfidenceInterval(float(values.mean()), float(low), float(high), confidence)


class BootstrapMean:
    """Metric object: accumulate per-sample values, ``compute()`` -> mean, std and interval."""

    def __init__(
        self, n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE, seed: int = 0
    ) -> None:
        self.n_resamples, self.confidence, self.seed = n_resamples, confidence, seed
        self.values: list[np.ndarray] = []

    def update(self, values: np.ndarray) -> None:
        self.values.append(np.asarray(values, dtype=np.float64).reshape(-1))

    def compute(self) -> dict[str, float]:
        """``{"mean", "std", "ci_low", "ci_high"}``."""
        values = np.concatenate(self.values) if self.values else np.empty(0)
        interval = bootstrap_mean_ci(
            values, n_resamples=self.n_resamples, confidence=self.confidence, seed=self.seed
        )
        return {
            "mean": interval.estimate,
            "std": float(values.std()),
            "ci_low": interval.low,
            "ci_high": interval.high,
        }

    def reset(self) -> None:
        self.values = []
