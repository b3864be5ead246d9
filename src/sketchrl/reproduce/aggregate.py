"""Seeds as an axis: per-seed metrics -> mean, a 95% interval over seeds, and significance.

The interval is Student's t interval over the per-seed values (each seed's value is one
evaluation of one fine-tuning run, so its spread is the seed-to-seed variation of training and
of sampling together): ``mean +- t_{0.975, k-1} s / sqrt(k)`` for k seeds. With one seed there
is no spread to measure, and the interval is the evaluation's own (a bootstrap over samples),
when it has one. Two methods differ significantly when Welch's t test on their per-seed values
gives p < 0.05 (at least two seeds each).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

#: Metrics a study table shows (key in metrics.json).
METRICS = ("reward_score", "classifier_rate", "fid", "kid", "precision", "recall", "density",
           "coverage", "points_per_sketch_mean")
CONFIDENCE = 0.95
SIGNIFICANCE = 0.05


@dataclasses.dataclass(frozen=True)
class SeedSummary:
    """One metric of one method over its seeds."""

    values: tuple[float, ...]  # per seed, in seed order
    mean: float
    low: float
    high: float

    @property
    def seeds(self) -> int:
        return len(self.values)


def t_quantile(seeds: int) -> float:
    """``t_{0.975}`` with ``seeds - 1`` degrees of freedom."""
    from scipy import stats

    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, seeds - 1))


def summarize(values: Sequence[float], single_interval: tuple[float, float] | None = None
              ) -> SeedSummary | None:
    """Mean and 95% t interval over seeds (None when no seed has the metric)."""
    finite = tuple(float(v) for v in values if v is not None and math.isfinite(float(v)))
    if not finite:
        return None
    mean = sum(finite) / len(finite)
    if len(finite) == 1:
        low, high = single_interval if single_interval is not None else (mean, mean)
        return SeedSummary(finite, mean, low, high)
    spread = math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1))
    half = t_quantile(len(finite)) * spread / math.sqrt(len(finite))
    return SeedSummary(finite, mean, mean - half, mean + half)


def welch_p_value(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided Welch t test of two sets of per-seed values (None with fewer than 2 each)."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return None
    if max(a) == min(a) and max(b) == min(b):
        return 1.0 if a[0] == b[0] else 0.0
    with warnings.catch_warnings():  # nearly identical values: scipy warns, p is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def aggregate(per_seed: Sequence[Mapping[str, Any]],
              metrics: Sequence[str] = METRICS) -> dict[str, SeedSummary]:
    """``{metric: SeedSummary}`` from one method's per-seed ``metrics.json`` dicts."""
    result = {}
    for metric in metrics:
        values = [m.get(metric) for m in per_seed]
        single = None
        if len(per_seed) == 1 and per_seed[0].get(f"{metric}_ci_low") is not None:
            single = (per_seed[0][f"{metric}_ci_low"], per_seed[0][f"{metric}_ci_high"])
        summary = summarize(values, single)
        if summary is not None:
            result[metric] = summary
    return result


def differs(a: SeedSummary | None, b: SeedSummary | None) -> bool:
    """Whether two methods differ significantly on a metric (Welch, p < 0.05)."""
    if a is None or b is None:
        return False
    p = welch_p_value(a.values, b.values)
    return p is not None and p < SIGNIFICANCE
