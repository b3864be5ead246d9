"""Frechet distance between Gaussians fitted to features, and an FID metric object.

``frechet_distance`` is the pure function; :class:`GaussianStatistics` accumulates float64
running sums; :class:`FID` is the ``update`` / ``compute`` / ``reset`` metric (torchmetrics
style) that keeps the real statistics across resets, so one reference serves many generated
sets.

The trace term ``tr((sigma1 sigma2)^(1/2))`` is the sum of the square roots of the eigenvalues
of ``sigma1 sigma2``, which are those of the symmetric ``F^T sigma2 F`` for any ``F F^T =
sigma1`` (Cholesky, or the eigendecomposition when ``sigma1`` is singular): two symmetric
factorisations instead of pytorch-fid's ``scipy.linalg.sqrtm`` of a non-symmetric product
(the same value up to round-off, several times faster in 2048-d). With fewer samples than
dimensions on each side (e.g. 2,000 against 2,000 in 2048-d) both covariances are ``A^T A``
of the centred samples, and the eigenvalues are those of ``(A B^T)(A B^T)^T``
(:func:`frechet_distance_few_samples`, ``n x n`` instead of ``d x d``).
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.linalg

from sketchrl.errors import DataError

logger = logging.getLogger(__name__)


def _sum_of_square_roots(eigenvalues: np.ndarray) -> float:
    """Sum of square roots of a PSD matrix's eigenvalues (round-off negatives count as 0)."""
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``tr((sigma1 sigma2)^(1/2))`` of two covariance (PSD) matrices."""
    try:
        factor = scipy.linalg.cholesky(sigma1, lower=True)
    except np.linalg.LinAlgError:  # singular: fewer samples than dimensions
        values, vectors = scipy.linalg.eigh(sigma1)
        factor = vectors * np.sqrt(np.clip(values, 0.0, None))
    return _sum_of_square_roots(scipy.linalg.eigvalsh(factor.T @ sigma2 @ factor))


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """``|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1 = np.atleast_2d(sigma1).astype(np.float64)
    sigma2 = np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(
            f"mismatched shapes: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs "
            f"{sigma2.shape}"
        )
    diff = mu1 - mu2
    trace = np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    return float(diff @ diff + trace)


def frechet_distance_few_samples(features1: np.ndarray, features2: np.ndarray) -> float:
    """:func:`frechet_distance` of the two sets' Gaussians from the samples themselves (exact;
    fast when the sets are smaller than the dimension): with ``A``, ``B`` the centred samples
    over ``sqrt(n - 1)``, ``tr((A^T A B^T B)^(1/2))`` is the sum of the singular values of
    ``A B^T``."""
    features1 = np.asarray(features1, dtype=np.float64)
    features2 = np.asarray(features2, dtype=np.float64)
    mu1, mu2 = features1.mean(axis=0), features2.mean(axis=0)
    centred1 = (features1 - mu1) / np.sqrt(len(features1) - 1)
    centred2 = (features2 - mu2) / np.sqrt(len(features2) - 1)
    cross = centred1 @ centred2.T  # (n1, n2)
    gram = cross @ cross.T if len(features1) <= len(features2) else cross.T @ cross
    trace_sqrt = _sum_of_square_roots(scipy.linalg.eigvalsh(gram))
    diff = mu1 - mu2
    traces = np.sum(centred1 * centred1) + np.sum(centred2 * centred2)
    return float(diff @ diff + traces - 2.0 * trace_sqrt)


class GaussianStatistics:
    """Running float64 count, sum and sum of outer products of ``(N, D)`` feature batches.

    The rows themselves are kept only while there are fewer of them than dimensions
    (:attr:`rows`), for :func:`frechet_distance_few_samples`.
    """

    def __init__(self) -> None:
        self.count = 0
        self.total: np.ndarray | None = None
        self.outer: np.ndarray | None = None
        self._rows: list[np.ndarray] | None = []

    def update(self, features: np.ndarray) -> None:
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2:
            raise ValueError(f"features must be (N, D), got shape {features.shape}")
        if self.total is None:
            dim = features.shape[1]
            self.total, self.outer = np.zeros(dim), np.zeros((dim, dim))
        elif features.shape[1] != len(self.total):
            raise ValueError(f"feature dimension {features.shape[1]} != {len(self.total)}")
        self.count += len(features)
        self.total += features.sum(axis=0)
        self.outer += features.T @ features
        if self._rows is not None:
            self._rows.append(features)
            if self.count >= len(self.total):
                self._rows = None

    @property
    def rows(self) -> np.ndarray | None:
        """All rows seen, while fewer than the dimension; else None."""
        if self._rows is None or not self._rows:
            return None
        return np.concatenate(self._rows)

    def mean(self) -> np.ndarray:
        self._require(1)
        return self.total / self.count

    def covariance(self) -> np.ndarray:
        """Unbiased sample covariance (``N - 1`` in the denominator)."""
        self._require(2)
        mean = self.mean()
        return (self.outer - self.count * np.outer(mean, mean)) / (self.count - 1)

    def _require(self, count: int) -> None:
        if self.count < count:
            raise DataError(f"need at least {count} feature vectors, got {self.count}")


class FID:
    """Frechet Inception Distance over feature vectors (``update(real=...)``, ``update(fake=...)``).

    Args:
        reset_real_features: whether :meth:`reset` also forgets the real statistics (default
            False: the reference is computed once and reused).
    """

    def __init__(self, reset_real_features: bool = False) -> None:
        self.reset_real_features = reset_real_features
        self.real = GaussianStatistics()
        self.fake = GaussianStatistics()

    def update(self, *, real: np.ndarray | None = None, fake: np.ndarray | None = None) -> None:
        if real is not None:
            self.real.update(real)
        if fake is not None:
            self.fake.update(fake)

    def compute(self) -> float:
        for side, stats in (("real", self.real), ("fake", self.fake)):
            if stats.count < 2:
                raise DataError(f"FID needs at least 2 {side} feature vectors, got {stats.count}")
        real_rows, fake_rows = self.real.rows, self.fake.rows
        if real_rows is not None and fake_rows is not None:  # both fewer than the dimension
            return frechet_distance_few_samples(real_rows, fake_rows)
        return frechet_distance(
            self.real.mean(), self.real.covariance(), self.fake.mean(), self.fake.covariance()
        )

    def reset(self) -> None:
        self.fake = GaussianStatistics()
        if self.reset_real_features:
            self.real = GaussianStatistics()
