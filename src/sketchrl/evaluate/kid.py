"""Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs").

KID is the unbiased estimate of the squared maximum mean discrepancy (MMD^2) between the real
and the generated features under the cubic polynomial kernel ``k(x, y) = (x.y / d + 1)^3``,
averaged over random subsets (mean and standard deviation over the subsets, as torch-fidelity
and torchmetrics report it; subsets of ``min(1000, n_real, n_fake)`` by default, 100 of them,
seeded). Unlike FID, whose estimate is biased upward when there are few samples (and more so
with fewer samples than feature dimensions), KID's estimate is unbiased at any sample size, so
KIDs from different sample sizes can be compared; it can be slightly negative when the two
sets come from the same distribution.

:func:`kernel_inception_distance` is the pure function; :class:`KID` is the ``update`` /
``compute`` / ``reset`` metric that keeps the real features across resets. The subsets' sums
are read off the full kernel matrices when these fit in memory (one matrix product per pair of
sets instead of one per subset); larger sets are computed subset by subset.
"""

from __future__ import annotations

import numpy as np

from sketchrl.errors import DataError
from sketchrl.evaluate.feature_sets import FeatureSetMetric

#: Subsets averaged over (torch-fidelity's and torchmetrics' default).
KID_SUBSETS = 100
#: Largest subset size (torch-fidelity's and torchmetrics' default).
KID_SUBSET_SIZE = 1000
#: Most kernel-matrix entries formed at once (3 x 4096^2 float64 = 400 MB).
GRAM_LIMIT = 3 * 4096**2


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3,
                      coef0: float = 1.0) -> np.ndarray:
    """``(x @ y.T / d + coef0) ** degree`` for ``(n, d)`` and ``(m, d)`` features."""
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    """Unbiased MMD^2 from the kernel matrices of two samples (diagonals left out)."""
    m, n = len(k_xx), len(k_yy)
    xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(xx + yy - 2.0 * k_xy.sum() / (m * n))


def _subset_indices(count: int, size: int, subsets: int, rng: np.random.Generator) -> np.ndarray:
    return np.stack([rng.choice(count, size, replace=False) for _ in range(subsets)])


def _indicators(indices: np.ndarray, count: int) -> np.ndarray:
    """``(subsets, count)`` 0/1 rows marking each subset's members."""
    marks = np.zeros((len(indices), count))
    np.put_along_axis(marks, indices, 1.0, axis=1)
    return marks


def _subset_mmds_from_gram(real: np.ndarray, fake: np.ndarray, real_idx: np.ndarray,
                           fake_idx: np.ndarray) -> np.ndarray:
    """MMD^2 of every subset pair from the full kernel matrices: ``s^T K s`` sums."""
    size = real_idx.shape[1]
    marks_real, marks_fake = _indicators(real_idx, len(real)), _indicators(fake_idx, len(fake))
    k_rr = polynomial_kernel(real, real)
    xx = ((marks_real @ k_rr) * marks_real).sum(1) - marks_real @ np.diagonal(k_rr)
    del k_rr
    k_ff = polynomial_kernel(fake, fake)
    yy = ((marks_fake @ k_ff) * marks_fake).sum(1) - marks_fake @ np.diagonal(k_ff)
    del k_ff
    xy = ((marks_real @ polynomial_kernel(real, fake)) * marks_fake).sum(1)
    return (xx + yy) / (size * (size - 1)) - 2.0 * xy / size**2


def kernel_inception_distance(
    real: np.ndarray,
    fake: np.ndarray,
    *,
    subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    seed: int = 0,
) -> tuple[float, float]:
    """``(mean, std)`` of the unbiased MMD^2 over ``subsets`` random pairs of subsets.

    Each subset pair draws ``min(subset_size, n_real, n_fake)`` real and as many generated
    features without replacement (``numpy.random.default_rng(seed)``); the standard deviation
    is the population one (``ddof=0``), as torch-fidelity and torchmetrics report it.
    """
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be (N, D) with the same D, got {real.shape}, {fake.shape}")
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        raise DataError(
            f"KID needs at least 2 real and 2 generated feature vectors, got {len(real)} and "
            f"{len(fake)}"
        )
    if subsets < 1:
        raise DataError(f"KID needs at least one subset, got subsets={subsets}")
    rng = np.random.default_rng(seed)
    real_idx = _subset_indices(len(real), size, subsets, rng)
    fake_idx = _subset_indices(len(fake), size, subsets, rng)
    entries = len(real) ** 2 + len(fake) ** 2 + len(real) * len(fake)
    if entries <= GRAM_LIMIT:
        values = _subset_mmds_from_gram(real, fake, real_idx, fake_idx)
    else:
        values = np.array([
            mmd2_unbiased(polynomial_kernel(x, x), polynomial_kernel(y, y),
                          polynomial_kernel(x, y))
            for x, y in ((real[r], fake[f]) for r, f in zip(real_idx, fake_idx, strict=True))
        ])
    return float(values.mean()), float(values.std())


class KID(FeatureSetMetric):
    """KID over feature vectors (``update(real=...)``, ``update(fake=...)``, ``compute()``
    returns ``{"kid": mean, "kid_std": std}``)."""

    name = "KID"

    def __init__(self, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE,
                 seed: int = 0, reset_real_features: bool = False) -> None:
        super().__init__(reset_real_features)
        self.subsets, self.subset_size, self.seed = subsets, subset_size, seed

    def score(self, real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
        mean, std = kernel_inception_distance(real, fake, subsets=self.subsets,
                                              subset_size=self.subset_size, seed=self.seed)
        return {"kid": mean, "kid_std": std}
