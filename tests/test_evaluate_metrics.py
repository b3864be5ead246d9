"""Pure evaluation metrics: Frechet distance, FID object, prdc, bootstrap, sketch statistics,
the markdown report. No Inception network here (see test_evaluate.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from sketchrl.errors import DataError
from sketchrl.evaluate import (
    FID,
    PRDC,
    BootstrapMean,
    bootstrap_mean_ci,
    fid_warnings,
    format_markdown,
    frechet_distance,
    per_sketch_statistics,
    precision_recall_density_coverage,
    sketch_statistics,
)
from sketchrl.evaluate.fid import frechet_distance_few_samples


def rotation(angle: float) -> np.ndarray:
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


# --- Frechet distance -------------------------------------------------------------------------

def test_frechet_distance_of_known_gaussians():
    # |mu1 - mu2|^2 = 1 + 4; for commuting covariances the trace term is
    # sum (sqrt(s1) - sqrt(s2))^2 = (1 - 2)^2 + (2 - 3)^2 = 2, so the distance is 7.
    mu1, sigma1 = np.zeros(2), np.diag([1.0, 4.0])
    mu2, sigma2 = np.array([1.0, 2.0]), np.diag([4.0, 9.0])
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(7.0, abs=1e-9)
    # The same Gaussians in a rotated frame (non-diagonal covariances) are just as far apart.
    r = rotation(0.7)
    rotated = frechet_distance(r @ mu1, r @ sigma1 @ r.T, r @ mu2, r @ sigma2 @ r.T)
    assert rotated == pytest.approx(7.0, abs=1e-9)


def test_frechet_distance_non_commuting_covariances_1d_and_symmetry():
    assert frechet_distance(np.array([3.0]), np.array([[4.0]]), np.array([0.0]),
                            np.array([[1.0]])) == pytest.approx(9.0 + (2.0 - 1.0) ** 2)
    sigma1 = np.array([[2.0, 0.5], [0.5, 1.0]])
    sigma2 = np.array([[1.0, -0.3], [-0.3, 3.0]])
    forward = frechet_distance(np.zeros(2), sigma1, np.ones(2), sigma2)
    backward = frechet_distance(np.ones(2), sigma2, np.zeros(2), sigma1)
    assert forward == pytest.approx(backward, rel=1e-9)
    assert forward > 2.0  # the means alone are sqrt(2) apart


def test_singular_covariances_give_a_finite_distance():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(5, 40)), rng.normal(size=(6, 40)) + 1.0  # rank < dimension
    sigma1, sigma2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    full = frechet_distance(real.mean(0), sigma1, fake.mean(0), sigma2)
    assert np.isfinite(full) and full > 0
    # The distance computed in the samples' span matches the full-dimensional one.
    assert frechet_distance_few_samples(real, fake) == pytest.approx(full, rel=1e-4)


def test_fid_object_matches_the_analytic_distance_and_keeps_real_statistics():
    rng = np.random.default_rng(1)
    real = rng.multivariate_normal([0, 0], np.diag([1.0, 4.0]), size=40000)
    fake = rng.multivariate_normal([1, 2], np.diag([4.0, 9.0]), size=40000)
    fid = FID()
    for chunk in np.array_split(real, 7):  # running sums over uneven batches
        fid.update(real=chunk)
    fid.update(fake=fake)
    assert fid.compute() == pytest.approx(7.0, abs=0.25)
    fid.reset()  # forgets the fake set only
    fid.update(fake=real[:20000])
    assert fid.compute() == pytest.approx(0.0, abs=0.05)
    forgetful = FID(reset_real_features=True)
    forgetful.update(real=real, fake=fake)
    forgetful.reset()
    forgetful.update(fake=fake)
    with pytest.raises(DataError, match="real"):
        forgetful.compute()


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(30, 64))
    values = []
    for shift in (0.0, 0.5, 1.0, 2.0):
        fid = FID()
        fid.update(real=features, fake=features + shift)
        values.append(fid.compute())
    assert values[0] == pytest.approx(0.0, abs=1e-6)
    # Shifting every vector by s moves the mean by s in 64 dimensions: 64 s^2.
    assert values[1:] == pytest.approx([64 * 0.25, 64.0, 256.0], rel=1e-6)


# --- precision / recall / density / coverage ---------------------------------------------------

def test_prdc_identical_sets_are_perfect_and_far_sets_are_zero(capsys):
    rng = np.random.default_rng(3)
    real = rng.normal(size=(60, 16))
    same = precision_recall_density_coverage(real, real.copy())
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["coverage"] == 1.0
    assert same["density"] == pytest.approx(1.0, abs=0.2)
    far = precision_recall_density_coverage(real, real + 1000.0)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    assert capsys.readouterr().out == ""  # prdc's print is silenced


def test_prdc_half_overlap_gives_half_precision():
    rng = np.random.default_rng(4)
    real = rng.normal(size=(80, 8))
    fake = np.concatenate([real[:40], rng.normal(size=(40, 8)) + 500.0])
    result = precision_recall_density_coverage(real, fake)
    assert result["precision"] == pytest.approx(0.5)
    assert result["recall"] >= 0.5 and result["coverage"] >= 0.5  # the copies cover themselves
    assert result["density"] < 0.75


def test_prdc_threads_are_capped_at_the_available_cores(monkeypatch):
    import sklearn.metrics

    seen = []
    original = sklearn.metrics.pairwise_distances

    def recording(*args, **kwargs):
        seen.append(kwargs.get("n_jobs"))
        return original(*args, **kwargs)

    monkeypatch.setattr(sklearn.metrics, "pairwise_distances", recording)
    metric = PRDC()
    rng = np.random.default_rng(5)
    metric.update(real=rng.normal(size=(20, 4)))
    metric.update(fake=rng.normal(size=(20, 4)))
    metric.compute()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert len(seen) == 3 and all(1 <= jobs <= min(8, cores) for jobs in seen)


def test_prdc_refuses_too_few_samples():
    with pytest.raises(DataError, match="at least 7"):
        precision_recall_density_coverage(np.zeros((6, 3)), np.ones((20, 3)))


# --- bootstrap ----------------------------------------------------------------------------------

def test_bootstrap_interval_contains_the_mean_and_narrows_with_n():
    rng = np.random.default_rng(6)
    small = rng.normal(loc=2.0, size=100)
    large = rng.normal(loc=2.0, size=10000)
    small_ci, large_ci = bootstrap_mean_ci(small, seed=0), bootstrap_mean_ci(large, seed=0)
    for values, ci in ((small, small_ci), (large, large_ci)):
        assert ci.estimate == pytest.approx(values.mean())
        assert ci.low < ci.estimate < ci.high
    # The width shrinks like 1 / sqrt(n): 100x more samples -> about 10x narrower.
    assert large_ci.width < small_ci.width / 5
    assert small_ci.width == pytest.approx(2 * 1.96 / np.sqrt(100), rel=0.25)


def test_bootstrap_is_seeded():
    values = np.random.default_rng(7).random(50)
    assert bootstrap_mean_ci(values, seed=3) == bootstrap_mean_ci(values, seed=3)
    assert bootstrap_mean_ci(values, seed=3) != bootstrap_mean_ci(values, seed=4)


def test_bootstrap_mean_metric_accumulates_batches():
    metric = BootstrapMean(n_resamples=200, seed=0)
    metric.update(np.array([1.0, 0.0, 1.0]))
    metric.update(np.array([1.0]))
    result = metric.compute()
    assert result["mean"] == pytest.approx(0.75)
    assert result["std"] == pytest.approx(np.std([1, 0, 1, 1]))
    assert 0.0 <= result["ci_low"] <= 0.75 <= result["ci_high"] <= 1.0
    metric.reset()
    with pytest.raises(DataError):
        metric.compute()


# --- sketch statistics ----------------------------------------------------------------------

def test_sketch_statistics_by_hand():
    # Stroke 1: move to (1, 0) then draw a 3-4-5 segment; lift. Stroke 2: move (pen up) by 10,
    # then draw 2 units; last row without a lift still ends a stroke.
    first = np.array([[1, 0, 0], [3, 4, 1], [10, 0, 0], [0, 2, 0]], dtype=np.float32)
    second = np.array([[5, 5, 1]], dtype=np.float32)  # a single pen-up move: nothing drawn
    empty = np.zeros((0, 3), dtype=np.float32)
    stats = per_sketch_statistics([first, second, empty])
    np.testing.assert_allclose(stats["strokes_per_sketch"], [2, 1, 0])
    np.testing.assert_allclose(stats["points_per_sketch"], [4, 1, 0])
    np.testing.assert_allclose(stats["pen_down_length"], [5 + 2, 0, 0])
    summary = sketch_statistics([first, second, empty])
    assert summary["points_per_sketch_mean"] == pytest.approx(5 / 3)
    assert summary["pen_down_length_std"] == pytest.approx(np.std([7, 0, 0]))


def test_pen_down_length_agrees_with_polylines():
    from sketchrl.strokes import stroke3_to_polylines

    rng = np.random.default_rng(8)
    sketches = []
    for length in (5, 17, 40):
        sketch = rng.normal(size=(length, 3)).astype(np.float32)
        sketch[:, 2] = rng.random(length) < 0.2
        sketches.append(sketch)
    stats = per_sketch_statistics(sketches)
    for sketch, length in zip(sketches, stats["pen_down_length"], strict=True):
        lines = stroke3_to_polylines(sketch)
        expected = sum(np.linalg.norm(np.diff(line, axis=0), axis=1).sum() for line in lines)
        assert length == pytest.approx(expected, rel=1e-5)


# --- reliability flags and the report -----------------------------------------------------------

def test_fid_warnings_flag_small_or_short_references():
    reliable, warnings = fid_warnings("bird", n_generated=3000, n_real=3000, available=3000)
    assert reliable and warnings == []
    reliable, warnings = fid_warnings("owl", n_generated=2000, n_real=800, available=800)
    assert not reliable
    assert any("only 800 real owl" in w for w in warnings)
    assert any("unreliable" in w for w in warnings)
    reliable, warnings = fid_warnings("bird", n_generated=2000, n_real=2000, available=3000)
    assert not reliable and len(warnings) == 1


def test_markdown_report_shows_values_intervals_and_warnings():
    metrics = {
        "n": 2000, "reference": "quickdraw:owl", "n_reference": 800, "reference_available": 800,
        "fid": 81.468, "fid_reliable": False, "precision": 0.475, "recall": 0.254,
        "classifier_rate": 0.977, "classifier_rate_ci_low": 0.97, "classifier_rate_ci_high": 0.98,
        "clip_score": 0.478, "clip_score_ci_low": 0.47, "clip_score_ci_high": 0.49,
        "clip_score_reward_name": "clip", "strokes_per_sketch_mean": 5.5,
        "strokes_per_sketch_std": 1.25, "warnings": ["only 800 real owl drawings exist"],
    }
    text = format_markdown(metrics)
    assert "| FID (lower is better) | 81.47 (unreliable, see warnings) |" in text
    assert "| classifier rate | 97.7% | [97.0%, 98.0%] |" in text
    assert "| clip_score (clip) | 0.4780 | [0.4700, 0.4900] |" in text
    assert "| strokes per sketch | 5.50 | 1.25 |" in text
    assert "- only 800 real owl drawings exist" in text
    metrics["fid_reliable"] = True
    assert "unreliable" not in format_markdown({**metrics, "warnings": []})


def test_markdown_report_shows_kid_with_its_spread_and_the_settings():
    metrics = {"n": 2000, "reference": "quickdraw:bird", "fid": 20.5, "fid_reliable": True,
               "kid": 0.01234, "kid_std": 0.00056, "kid_subsets": 100, "kid_subset_size": 1000,
               "inception_precision": "bf16", "warnings": []}
    text = format_markdown(metrics)
    assert "| KID (lower is better) | 0.0123 ± 0.0006 (std over subsets) |" in text
    assert "kid_subsets=100, kid_subset_size=1000, inception_precision=bf16" in text
    assert "| KID (lower is better) | n/a |" in format_markdown({**metrics, "kid": None,
                                                                 "kid_std": None})
