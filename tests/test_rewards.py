"""Rewards: dense-return arithmetic, SSIM, the classifier reward, weighted sums, the registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import save_random_classifier
from PIL import Image
from scipy.ndimage import gaussian_filter

from sketchrl.errors import ConfigError, DataError
from sketchrl.render import QUICKDRAW_OPTIONS, SSIM_OPTIONS, RenderOptions, render
from sketchrl.rewards import (
    REWARDS,
    DenseReward,
    Reward,
    SSIMReward,
    WeightedSum,
    build_reward,
    checkpoint_lengths,
    discounted_return,
)


def square(side: float = 10.0, repeats: int = 1) -> np.ndarray:
    """A closed square drawn ``repeats`` times: 4 * repeats + 1 stroke-3 rows."""
    moves = [[side, 0, 0], [0, side, 0], [-side, 0, 0], [0, -side, 0]] * repeats
    return np.array([[0, 0, 0], *moves], dtype=np.float32)


def zigzag(rows: int) -> np.ndarray:
    steps = [[5.0, 4.0 * (-1) ** i, 1.0 if i % 7 == 6 else 0.0] for i in range(rows)]
    return np.array(steps, dtype=np.float32).reshape(-1, 3)


class LengthReward(Reward):
    """Test reward: (rows of the sketch) / 100, recording every batch it is asked to score."""

    name = "length"

    def __init__(self, options: RenderOptions | None = None) -> None:
        self.render_options = options or RenderOptions(size=16)
        self.device = torch.device("cpu")
        self.batches: list[list[np.ndarray]] = []

    def __call__(self, images, sketches):
        assert images.shape[0] == len(sketches)
        assert tuple(images.shape[1:]) == (1, self.render_options.size, self.render_options.size)
        self.batches.append([np.array(s) for s in sketches])
        return torch.tensor([len(s) / 100 for s in sketches], dtype=torch.float32)


# --- dense rewards -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "every", "expected"),
    [
        (60, 25, [25, 50, 60]),
        (50, 25, [25, 50]),
        (25, 25, [25]),
        (26, 25, [25, 26]),
        (10, 25, [10]),
        (0, 25, [0]),
        (3, 1, [1, 2, 3]),
    ],
)
def test_checkpoint_lengths(length, every, expected):
    assert checkpoint_lengths(length, every) == expected


def test_checkpoint_lengths_rejects_bad_period():
    with pytest.raises(ConfigError, match="every"):
        checkpoint_lengths(10, 0)


@pytest.mark.parametrize(
    ("rewards", "gamma", "expected"),
    [
        ([1.0, 2.0, 3.0], 0.5, 0.25 * 1 + 0.5 * 2 + 3),
        ([1.0, 2.0, 3.0], 1.0, 6.0),
        ([1.0, 2.0, 3.0], 0.0, 3.0),
        ([0.4], 0.9, 0.4),
        ([0.2, 0.8], 0.9, 0.9 * 0.2 + 0.8),
        ([], 0.9, 0.0),
    ],
)
def test_discounted_return(rewards, gamma, expected):
    assert float(discounted_return(rewards, gamma)) == pytest.approx(expected, abs=1e-12)


def test_dense_reward_hand_computed_returns():
    base = LengthReward()
    sketches = [zigzag(60), zigzag(50), zigzag(10), zigzag(0)]
    returns = DenseReward(base, every=25, gamma=0.5).score(sketches)
    expected = [0.25 * 0.25 + 0.5 * 0.5 + 0.60, 0.5 * 0.25 + 0.50, 0.10, 0.0]
    assert returns.dtype == torch.float32 and returns.shape == (4,)
    torch.testing.assert_close(returns, torch.tensor(expected), atol=1e-6, rtol=0)
    scored = [s for batch in base.batches for s in batch]
    assert [len(s) for s in scored] == [25, 50, 60, 25, 50, 10, 0]
    np.testing.assert_array_equal(scored[1], sketches[0][:50])  # prefixes are the first rows


def test_normalized_dense_return_is_the_weighted_mean_and_has_no_length_bonus():
    sketches = [zigzag(60), zigzag(10)]
    returns = DenseReward(LengthReward(), every=25, gamma=0.5, normalize=True).score(sketches)
    first = (0.25 * 0.25 + 0.5 * 0.5 + 0.60) / (0.25 + 0.5 + 1.0)
    torch.testing.assert_close(returns, torch.tensor([first, 0.10]), atol=1e-6, rtol=0)

    class Constant(LengthReward):
        def __call__(self, images, sketches):
            return torch.full((len(sketches),), 0.5)

    summed = DenseReward(Constant(), every=10, gamma=1.0).score([zigzag(100), zigzag(20)])
    mean = DenseReward(Constant(), every=10, gamma=1.0, normalize=True).score(
        [zigzag(100), zigzag(20)])
    assert summed[0] > summed[1]  # the paper's sum pays for length alone
    torch.testing.assert_close(mean, torch.tensor([0.5, 0.5]))


def test_dense_reward_scores_all_prefixes_in_chunked_batches():
    sketches = [zigzag(60), zigzag(50), zigzag(10)]
    one_call, chunked = LengthReward(), LengthReward()
    expected = DenseReward(one_call, every=25, gamma=0.9).score(sketches)
    result = DenseReward(chunked, every=25, gamma=0.9, chunk_size=2).score(sketches)
    assert len(one_call.batches) == 1 and len(one_call.batches[0]) == 6
    assert [len(b) for b in chunked.batches] == [2, 2, 2]
    torch.testing.assert_close(result, expected)


def test_dense_call_reuses_final_images():
    base = LengthReward()
    sketches = [zigzag(60), zigzag(7)]
    dense = DenseReward(base, every=25, gamma=0.8)
    from_images = dense(render(sketches, base.render_options), sketches)
    torch.testing.assert_close(from_images, dense.score(sketches))
    torch.testing.assert_close(from_images, torch.tensor([0.8**2 * 0.25 + 0.8 * 0.5 + 0.6, 0.07]))


def test_dense_with_zero_discount_or_long_period_is_the_sparse_reward(shared_assets):
    ssim = build_reward("ssim", {"target": "quickdraw:bird/simplified"})
    sketches = [square(10, 2), zigzag(30), square(6)]
    sparse = ssim.score(sketches)
    torch.testing.assert_close(DenseReward(ssim, every=1000).score(sketches), sparse)
    torch.testing.assert_close(DenseReward(ssim, every=4, gamma=0.0).score(sketches), sparse)
    assert not torch.allclose(DenseReward(ssim, every=4, gamma=1.0).score(sketches), sparse)


# --- SSIM ----------------------------------------------------------------------------------


def reference_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al. (2004) SSIM, Gaussian window 11 / sigma 1.5, mean over the valid region."""
    c1, c2 = 0.01**2, 0.03**2

    def blur(image):
        return gaussian_filter(image, sigma=1.5, truncate=5 / 1.5, mode="reflect")[5:-5, 5:-5]

    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return float(ssim_map.mean())


def test_ssim_target_drawing_scores_one_and_matches_reference(shared_assets):
    reward = build_reward("ssim", {"target": "quickdraw:bird/simplified", "target_index": 2})
    from sketchrl.assets import resolve
    from sketchrl.data import load_ndjson_stroke3

    birds = load_ndjson_stroke3(resolve("quickdraw:bird/simplified"))
    scores = reward.score(birds[:4])
    assert scores.shape == (4,) and scores.dtype == torch.float32
    assert scores[2] == pytest.approx(1.0, abs=1e-5)
    assert (scores[[0, 1, 3]] < 0.99).all()
    images = render(birds[:4], SSIM_OPTIONS)
    target = reward.target_image[0, 0].double().numpy()
    for index in (0, 3):
        expected = reference_ssim(images[index, 0].double().numpy(), target)
        assert float(scores[index]) == pytest.approx(expected, abs=1e-4)
    alone = reward.score([birds[3]])
    assert float(alone[0]) == pytest.approx(float(scores[3]), abs=1e-6)


def test_fast_ssim_equals_pytorch_msssim():
    """Both fast paths (the C++ kernel and the matrix products) compute pytorch-msssim's SSIM
    (to 1e-5), on gray and RGB images of any size."""
    from sketchrl.rewards.ssim import SSIMToTarget, ssim_kernel, ssim_per_image

    assert ssim_kernel() is not None, "the C++ SSIM kernel did not build"
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(1, 1, 224, 224, generator=generator)
    images = torch.rand(6, 1, 224, 224, generator=generator)
    images[:3] = 0.5 * images[:3] + 0.5 * target  # some similar, some not
    expected = ssim_per_image(images, target)
    fast = SSIMToTarget(target)
    torch.testing.assert_close(fast(images), expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(fast.by_matrix_products(images), expected, rtol=0, atol=1e-5)
    assert expected[:3].min() > expected[3:].max()
    rgb = torch.rand(2, 3, 32, 40, generator=generator)
    rgb_target = torch.rand(1, 3, 32, 40, generator=generator)
    torch.testing.assert_close(SSIMToTarget(rgb_target)(rgb), ssim_per_image(rgb, rgb_target),
                               rtol=0, atol=1e-5)


def test_ssim_kernel_matches_on_renders_and_without_it(shared_assets, monkeypatch):
    """On real renders (mostly blank paper, the reward's case) the C++ kernel and the matrix
    products agree with pytorch-msssim; with SKETCHRL_NATIVE=0 the reward still runs."""
    from sketchrl.assets import resolve
    from sketchrl.data import load_ndjson_stroke3
    from sketchrl.rewards.ssim import SSIMToTarget, ssim_per_image

    drawings = load_ndjson_stroke3(resolve("quickdraw:bird/simplified"))
    images = render(drawings[:40], SSIM_OPTIONS)
    fast = SSIMToTarget(images[:1])
    expected = ssim_per_image(images, images[:1])
    torch.testing.assert_close(fast(images), expected, rtol=0, atol=1e-5)
    assert abs(float(expected[0]) - 1.0) < 1e-6 and float(expected[1:].max()) < 0.95
    torch.testing.assert_close(fast(images[5:6]), expected[5:6], rtol=0, atol=1e-5)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:  # images are split between threads, each image's sum is sequential: the same bits
        two_threads = fast(images)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(two_threads, fast(images))
    monkeypatch.setenv("SKETCHRL_NATIVE", "0")
    torch.testing.assert_close(fast(images), expected, rtol=0, atol=1e-5)


def test_ssim_image_file_target(tmp_path):
    image = render([square()], SSIM_OPTIONS)[0, 0].numpy()
    # twice the size, paper made transparent: the target must come back as the render
    big = np.kron(image, np.ones((2, 2), dtype=np.float32))
    rgba = np.zeros((448, 448, 4), dtype=np.uint8)
    rgba[..., :3] = (big[..., None] * 255).round().astype(np.uint8)
    rgba[..., 3] = np.where(big < 1.0, 255, 0)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "target.png")
    reward = build_reward("ssim", {"target": str(tmp_path / "target.png")})
    assert reward.target_image.shape == (1, 1, 224, 224)
    scores = reward.score([square(), zigzag(20)])
    assert scores[0] > 0.95 and scores[1] < 0.9


def test_ssim_image_file_keeps_aspect_ratio(tmp_path):
    Image.new("L", (100, 200), 0).save(tmp_path / "tall.png")  # all ink, twice as tall as wide
    target = build_reward("ssim", {"target": str(tmp_path / "tall.png")}).target_image[0, 0]
    assert float(target[:, 70:154].max()) < 0.05  # the ink band: the middle half of the width
    assert float(target[:, :50].min()) > 0.95 and float(target[:, -50:].min()) > 0.95


def test_ssim_target_errors(tmp_path, shared_assets):
    with pytest.raises(ConfigError, match="target_index=999"):
        build_reward("ssim", {"target": "quickdraw:bird/simplified", "target_index": 999})
    with pytest.raises(DataError, match="not found"):
        build_reward("ssim", {"target": str(tmp_path / "missing.png")})
    with pytest.raises(DataError):
        build_reward("ssim", {"target": "no_such_file"})


def test_reward_rejects_images_with_other_render_options(shared_assets):
    reward = SSIMReward(target="quickdraw:bird/simplified")
    with pytest.raises(ValueError, match="render_options"):
        reward(torch.ones(2, 3, 224, 224), [square(), square()])


# --- classifier reward ---------------------------------------------------------------------


def test_classifier_reward_is_the_category_probability(untrained_classifier_dir):
    from sketchrl.classifiers import load_classifier

    options = {"model": str(untrained_classifier_dir), "category": "bird"}
    reward = build_reward("classifier", options)
    assert reward.render_options == QUICKDRAW_OPTIONS
    sketches = [square(), zigzag(30), square(3, 2)]
    scores = reward.score(sketches)
    probs = load_classifier(untrained_classifier_dir).predict_proba(
        render(sketches, QUICKDRAW_OPTIONS), ink=1
    )
    assert scores.shape == (3,) and scores.dtype == torch.float32
    torch.testing.assert_close(scores, probs[:, 1])


def test_classifier_reward_cap_flattens_only_the_confident(untrained_classifier_dir):
    options = {"model": str(untrained_classifier_dir), "category": "bird"}
    sketches = [square(), zigzag(30), square(3, 2), zigzag(7)]
    probabilities = build_reward("classifier", options).score(sketches)
    cap = float(probabilities.median())
    capped = build_reward("classifier", {**options, "cap": cap}).score(sketches)
    torch.testing.assert_close(capped, torch.minimum(probabilities, torch.tensor(cap)))
    assert (capped == cap).sum() >= 2 and (capped < cap).sum() >= 1


def test_classifier_ensemble_combines_each_networks_probability(untrained_classifier_dir,
                                                                  tmp_path):
    # other random weights, the categories in another order
    second = str(save_random_classifier(tmp_path / "second", ("cat", "bird", "owl"), seed=1))
    sketches = [square(), zigzag(30), square(3, 2), zigzag(7)]
    first_alone = build_reward("classifier", {"model": str(untrained_classifier_dir),
                                              "category": "bird"}).score(sketches)
    second_alone = build_reward("classifier", {"model": second,
                                               "category": "bird"}).score(sketches)
    assert not torch.allclose(first_alone, second_alone)
    options = {"model": str(untrained_classifier_dir), "category": "bird"}
    mean = build_reward("classifier", {**options, "ensemble": [second]}).score(sketches)
    torch.testing.assert_close(mean, (first_alone + second_alone) / 2)
    least = build_reward("classifier", {**options, "ensemble": second,  # as from --set
                                        "aggregate": "min"}).score(sketches)
    torch.testing.assert_close(least, torch.minimum(first_alone, second_alone))
    with pytest.raises(ConfigError, match="mean or min"):
        build_reward("classifier", {**options, "ensemble": [second], "aggregate": "max"})


def test_classifier_ensemble_needs_the_category_in_every_network(untrained_classifier_dir,
                                                                 tmp_path):
    second = str(save_random_classifier(tmp_path / "second", ("cat", "dog"), seed=1))
    with pytest.raises(ConfigError, match="second"):
        build_reward("classifier", {"model": str(untrained_classifier_dir), "category": "bird",
                                    "ensemble": [second]})


def test_classifier_reward_errors(untrained_classifier_dir):
    with pytest.raises(ConfigError, match="owl, bird, cat"):
        build_reward("classifier", {"model": str(untrained_classifier_dir), "category": "dog"})
    for cap in (0.0, 1.5):
        with pytest.raises(ConfigError, match="cap must be in"):
            build_reward("classifier", {"model": str(untrained_classifier_dir), "cap": cap})
    with pytest.raises(ConfigError, match="classifier train"):
        build_reward("classifier", {})


# --- weighted sums and the registry ---------------------------------------------------------


def test_weighted_sum_renders_each_term_with_its_options():
    small, large = LengthReward(RenderOptions(size=16)), LengthReward(RenderOptions(size=32))
    total = WeightedSum([small, large], [0.5, 2.0])
    sketches = [zigzag(10), zigzag(40)]
    torch.testing.assert_close(total.score(sketches), torch.tensor([0.25, 1.0]))
    assert len(small.batches) == len(large.batches) == 1


def test_weighted_sum_from_registry(untrained_classifier_dir):
    terms = [
        {"name": "classifier", "weight": 2.0,
         "options": {"model": str(untrained_classifier_dir), "category": "owl"}},
        {"name": "classifier", "weight": -1.0,
         "options": {"model": str(untrained_classifier_dir), "category": "cat"}},
    ]
    total = build_reward("weighted_sum", {"terms": terms})
    sketches = [square(), zigzag(12)]
    owl, cat = (build_reward("classifier", t["options"]) for t in terms)
    torch.testing.assert_close(total.score(sketches), 2 * owl.score(sketches) - cat.score(sketches))


def test_registry_errors_list_the_valid_names():
    assert {"ssim", "clip", "classifier"} <= set(REWARDS)
    with pytest.raises(ConfigError, match="valid rewards: .*ssim"):
        build_reward("sism", {})
    with pytest.raises(ConfigError, match="valid options: target, target_index"):
        build_reward("ssim", {"targte": "x"})


def test_registry_parses_string_options(shared_assets):
    reward = build_reward("ssim", {"target": "quickdraw:bird/simplified", "target_index": "1"})
    assert reward.target_index == 1
    with pytest.raises(ConfigError, match="target_index"):
        build_reward("ssim", {"target_index": "one"})
