"""Frechet distance between Gaussians fitted to features, and an FID metric object.

``frechet_distance`` is the pure function (scipy's matrix square root, as pytorch-fid);
:class:`GaussianStatistics` accumulates float64 running sums; :class:`FID` is the
``update`` / ``compute`` / ``reset`` metric (torchmetrics style) that keeps the real
statistics across resets, so one reference serves many generated sets.

With fewer samples than dimensions (small test sets; n = 500 against 500 in 2048-d) both
covariances live in the span of the centred samples; :func:`frechet_distance_few_samples`
computes the same distance exactly in that ``r``-dimensional span (``r <= n1 + n2``), which
makes scipy's ``O(d^3)`` square root ``O(r^3)``.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import scipy.linalg

from sketchrl.errors import DataError

logger = logging.getLogger(__name__)

#: Largest imaginary part of sqrtm's diagonal that is treated as round-off.
IMAGINARY_TOLERANCE = 1e-3


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    """scipy's matrix square root; its ill-conditioning warning (expected for the singular
    covariances of small sets, which the caller handles) goes to the log."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(matrix)
    for warning in caught:
        logger.info("scipy.linalg.sqrtm: %s", warning.message)
    return root


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """``|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``.

    Singular covariances (fewer samples than dimensions) can make the square root of the
    product non-finite; then ``eps * I`` is added to both covariances, as pytorch-fid does.
    Round-off can leave a complex square root: its real part is used (a warning is logged when
    the imaginary part is larger than round-off).
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1 = np.atleast_2d(sigma1).astype(np.float64)
    sigma2 = np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(
            f"mismatched shapes: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs "
            f"{sigma2.shape}"
        )
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        logger.info("sqrtm of the covariance product is singular; adding %g to the diagonal", eps)
        offset = np.eye(len(sigma1)) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        largest_imaginary = float(np.max(np.abs(np.diagonal(covmean).imag)))
        if largest_imaginary > IMAGINARY_TOLERANCE:
            logger.warning(
                "sqrtm left an imaginary component of %.3g; using the real part", largest_imaginary
            )
        covmean = covmean.real
    diff = mu1 - mu2
    distance = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return float(distance)


def frechet_distance_few_samples(
    features1: np.ndarray, features2: np.ndarray, eps: float = 1e-6
) -> float:
    """:func:`frechet_distance` of the two sets' Gaussians, computed in the span of their
    centred samples (exact; fast when ``n1 + n2`` is much smaller than the dimension)."""
    features1 = np.asarray(features1, dtype=np.float64)
    features2 = np.asarray(features2, dtype=np.float64)
    mu1, mu2 = features1.mean(axis=0), features2.mean(axis=0)
    centred1 = (features1 - mu1) / np.sqrt(len(features1) - 1)
    centred2 = (features2 - mu2) / np.sqrt(len(features2) - 1)
    basis, _ = np.linalg.qr(np.concatenate([centred1, centred2]).T)  # (d, n1 + n2) orthonormal
    projected1, projected2 = centred1 @ basis, centred2 @ basis
    span_distance = frechet_distance(
        np.zeros(basis.shape[1]), projected1.T @ projected1,
        np.zeros(basis.shape[1]), projected2.T @ projected2, eps,
    )
    diff = mu1 - mu2
    return float(diff @ diff + span_distance)


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
        if (
            real_rows is not None
            and fake_rows is not None
            and len(real_rows) + len(fake_rows) < real_rows.shape[1]
        ):
            return frechet_distance_few_samples(real_rows, fake_rows)
        return frechet_distance(
            self.real.mean(), self.real.covariance(), self.fake.mean(), self.fake.covariance()
        )

    def reset(self) -> None:
        self.fake = GaussianStatistics()
        if self.reset_real_features:
            self.real = GaussianStatistics()
