"""Precision, recall, density and coverage (Naeem et al. 2020) with the ``prdc`` package.

``prdc.compute_prdc`` prints a line and asks scikit-learn for 8 threads whatever the machine;
:func:`precision_recall_density_coverage` silences the print and caps the threads at the
cores this process may use, then returns plain floats.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator

import numpy as np

from sketchrl.errors import DataError
from sketchrl.evaluate.feature_sets import FeatureSetMetric

#: k of the k-nearest-neighbour balls (the paper and prdc's README use 5).
NEAREST_K = 5
#: The thread count prdc hard-codes for scikit-learn's pairwise distances.
PRDC_HARDCODED_JOBS = 8
PRDC_KEYS = ("precision", "recall", "density", "coverage")


def available_cores() -> int:
    """CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _capped_pairwise_distance(data_x: np.ndarray, data_y: np.ndarray | None = None) -> np.ndarray:
    """prdc's ``compute_pairwise_distance`` with at most :func:`available_cores` threads."""
    import sklearn.metrics

    jobs = min(PRDC_HARDCODED_JOBS, available_cores())
    return sklearn.metrics.pairwise_distances(data_x, data_y, metric="euclidean", n_jobs=jobs)


@contextlib.contextmanager
def _quiet_prdc() -> Iterator[object]:
    """prdc's module with its print silenced and its thread count capped (restored after)."""
    import prdc.prdc as prdc_module

    original = prdc_module.compute_pairwise_distance
    prdc_module.compute_pairwise_distance = _capped_pairwise_distance
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield prdc_module
    finally:
        prdc_module.compute_pairwise_distance = original


def precision_recall_density_coverage(
    real: np.ndarray, fake: np.ndarray, nearest_k: int = NEAREST_K
) -> dict[str, float]:
    """``{"precision", "recall", "density", "coverage"}`` of ``fake`` against ``real`` features."""
    real, fake = np.asarray(real), np.asarray(fake)
    for side, features in (("real", real), ("fake", fake)):
        if features.ndim != 2 or len(features) < nearest_k + 2:
            raise DataError(
                f"precision/recall with k={nearest_k} need at least {nearest_k + 2} {side} "
                f"feature vectors (N, D), got shape {features.shape}"
            )
    with _quiet_prdc() as prdc_module:
        result = prdc_module.compute_prdc(real, fake, nearest_k)
    return {key: float(result[key]) for key in PRDC_KEYS}


class PRDC(FeatureSetMetric):
    """Precision, recall, density and coverage as a metric object over features."""

    name = "PRDC"

    def __init__(self, nearest_k: int = NEAREST_K, reset_real_features: bool = False) -> None:
        super().__init__(reset_real_features)
        self.nearest_k = nearest_k

    def score(self, real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
        return precision_recall_density_coverage(real, fake, self.nearest_k)
