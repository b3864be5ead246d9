"""Kernel Inception Distance: the unbiased MMD^2 with the cubic polynomial kernel, over subsets.

The reference computations here are written from the formula (Binkowski et al. 2018, eq. 2)
with explicit loops; they share no code with ``sketchrl.evaluate.kid``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from sketchrl.errors import DataError
from sketchrl.evaluate import KID, kernel_inception_distance
from sketchrl.evaluate import kid as kid_module


def cubic_kernel(x: np.ndarray, y: np.ndarray) -> float:
    dimension = len(x)
    return (sum(float(a) * float(b) for a, b in zip(x, y, strict=True)) / dimension + 1.0) ** 3


def mmd2_by_loops(xs: np.ndarray, ys: np.ndarray) -> float:
    """(1 / m(m-1)) sum_{i != j} k(x_i, x_j) + (1 / n(n-1)) sum_{i != j} k(y_i, y_j)
    - (2 / mn) sum_{i, j} k(x_i, y_j)."""
    m, n = len(xs), len(ys)
    xx = sum(cubic_kernel(xs[i], xs[j]) for i, j in itertools.permutations(range(m), 2))
    yy = sum(cubic_kernel(ys[i], ys[j]) for i, j in itertools.permutations(range(n), 2))
    xy = sum(cubic_kernel(x, y) for x in xs for y in ys)
    return xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2.0 * xy / (m * n)


def features(count: int, dimension: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """Non-negative features like Inception's pool activations."""
    return np.abs(np.random.default_rng(seed).normal(size=(count, dimension))) + shift


def test_kid_of_whole_sets_matches_the_formula_by_loops():
    real, fake = features(10, 6, seed=0), features(10, 6, seed=1, shift=0.3)
    # One subset as large as both sets: the subsets are the whole sets (MMD ignores order).
    mean, std = kernel_inception_distance(real, fake, subsets=1, subset_size=50)
    assert mean == pytest.approx(mmd2_by_loops(real, fake), rel=1e-10, abs=1e-12)
    assert std == 0.0


@pytest.mark.parametrize("gram_limit", [kid_module.GRAM_LIMIT, 0])  # kernel matrices / subsets
def test_subset_mean_and_std_match_the_formula_by_loops(monkeypatch, gram_limit):
    monkeypatch.setattr(kid_module, "GRAM_LIMIT", gram_limit)
    real, fake = features(14, 5, seed=2), features(11, 5, seed=3, shift=0.2)
    mean, std = kernel_inception_distance(real, fake, subsets=7, subset_size=8, seed=5)
    # The documented draws: all real subsets, then all fake subsets, from default_rng(seed).
    rng = np.random.default_rng(5)
    real_subsets = [rng.choice(14, 8, replace=False) for _ in range(7)]
    fake_subsets = [rng.choice(11, 8, replace=False) for _ in range(7)]
    values = [mmd2_by_loops(real[r], fake[f]) for r, f in zip(real_subsets, fake_subsets,
                                                               strict=True)]
    assert mean == pytest.approx(np.mean(values), rel=1e-9)
    assert std == pytest.approx(np.sqrt(np.mean((np.array(values) - np.mean(values)) ** 2)),
                                rel=1e-7)


def test_subset_size_defaults_to_the_smaller_set_and_is_seeded():
    real, fake = features(40, 8, seed=4), features(25, 8, seed=5, shift=0.1)
    first = kernel_inception_distance(real, fake, subsets=20, seed=1)
    assert first == kernel_inception_distance(real, fake, subsets=20, seed=1)
    assert first != kernel_inception_distance(real, fake, subsets=20, seed=2)
    metric = KID(subsets=20, seed=1)
    metric.update(real=real, fake=fake)
    assert metric.compute()["kid"] == pytest.approx(first[0])


def inception_like(count: int, seed: int, mean_seed: int = 100) -> np.ndarray:
    """256-d non-negative features scattered around a shared mean, like one category's."""
    mean = np.abs(np.random.default_rng(mean_seed).normal(size=256))
    return np.abs(mean + 0.5 * np.random.default_rng(seed).normal(size=(count, 256)))


def test_a_set_against_itself_is_about_zero_and_kid_rises_with_corruption():
    real, same_distribution = inception_like(300, seed=6), inception_like(300, seed=7)
    noise = inception_like(300, seed=8, mean_seed=101)  # another "category"
    values = [
        kernel_inception_distance(real, (1 - level) * same_distribution + level * noise,
                                  subset_size=200)[0]
        for level in (0.05, 0.1, 0.2, 0.4, 0.8)
    ]
    assert all(low < high for low, high in itertools.pairwise(values)), values
    # Overlapping subsets of one set make the unbiased estimate slightly negative (about
    # -2 / m times the kernel's diagonal excess); on the corruptions' scale it is zero.
    itself, _ = kernel_inception_distance(real, real, subset_size=200)
    assert -0.1 * values[2] < itself <= 0.0
    independent, spread = kernel_inception_distance(real, same_distribution, subset_size=200)
    assert abs(independent) < 3 * spread and abs(independent) < 0.2 * values[0]


def test_kid_metric_accumulates_batches_and_keeps_the_real_features():
    real, fake = features(30, 4, seed=9), features(30, 4, seed=10, shift=0.5)
    metric = KID(subsets=10, subset_size=30)
    for chunk in np.array_split(real, 4):
        metric.update(real=chunk)
    metric.update(fake=fake[:13])
    metric.update(fake=fake[13:])
    result = metric.compute()
    assert set(result) == {"kid", "kid_std"}
    assert result["kid"] == pytest.approx(mmd2_by_loops(real, fake), rel=1e-9)
    metric.reset()  # forgets the fake features only
    metric.update(fake=real)
    assert metric.compute()["kid"] == pytest.approx(
        kernel_inception_distance(real, real, subsets=10, subset_size=30)[0]
    )
    forgetful = KID(reset_real_features=True)
    forgetful.update(real=real, fake=fake)
    forgetful.reset()
    forgetful.update(fake=fake)
    with pytest.raises(DataError, match="both real and fake"):
        forgetful.compute()


def test_too_few_features_are_data_errors():
    with pytest.raises(DataError, match="at least 2"):
        kernel_inception_distance(np.ones((1, 3)), np.ones((5, 3)))
    with pytest.raises(DataError, match="subset"):
        kernel_inception_distance(np.ones((4, 3)), np.ones((5, 3)), subsets=0)


def test_agrees_with_torchmetrics_mmd():
    kid = pytest.importorskip("torchmetrics.image.kid")
    real, fake = features(50, 16, seed=11), features(50, 16, seed=12, shift=0.2)
    expected = float(kid.poly_mmd(torch.from_numpy(real), torch.from_numpy(fake)))
    mean, _ = kernel_inception_distance(real, fake, subsets=3, subset_size=50)
    assert mean == pytest.approx(expected, rel=1e-9)
