"""The realism reward: the score against prdc's precision and a hand computation, the pruned
manifold, classifier features, the reward on real drawings, and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sketchrl.errors import ConfigError
from sketchrl.rewards import build_reward
from sketchrl.rewards.realism import real_manifold, realism_scores


def test_realism_score_by_hand():
    real = torch.tensor([[0.0, 0.0], [4.0, 0.0]])
    radii = torch.tensor([1.0, 2.0])
    fakes = torch.tensor([[0.5, 0.0], [3.0, 0.0], [10.0, 0.0]])
    # [max(1/0.5, 2/3.5), max(1/3, 2/1), max(1/10, 2/6)]
    expected = torch.tensor([2.0, 2.0, 1.0 / 3.0])
    torch.testing.assert_close(realism_scores(fakes, real, radii), expected)


def test_a_score_of_one_or_more_is_prdc_precision():
    from prdc import compute_prdc

    generator = np.random.default_rng(0)
    real = generator.normal(size=(300, 8)).astype(np.float32)
    fake = (generator.normal(size=(200, 8)) * 1.3 + 0.4).astype(np.float32)
    k = 5
    real_t = torch.from_numpy(real)
    radii = torch.cdist(real_t, real_t).kthvalue(k + 1, dim=1).values  # unpruned, as prdc
    scores = realism_scores(torch.from_numpy(fake), real_t, radii)
    precision = compute_prdc(real, fake, nearest_k=k)["precision"]
    assert 0.05 < precision < 0.95
    assert int((scores >= 1).sum()) == round(precision * len(fake))


def test_real_manifold_keeps_the_half_with_smaller_radii():
    from scipy.spatial.distance import cdist

    generator = np.random.default_rng(1)
    real = generator.normal(size=(101, 4))
    k = 3
    radii = np.sort(cdist(real, real), axis=1)[:, k]
    kept, kept_radii = real_manifold(torch.from_numpy(real), k)
    mask = radii <= np.median(radii)
    assert len(kept) == mask.sum() == 51
    np.testing.assert_allclose(kept.numpy(), real[mask])
    np.testing.assert_allclose(kept_radii.numpy(), radii[mask])


@pytest.mark.parametrize("arch", ["cnn", "resnet18"])
def test_classifier_features_are_the_last_layers_input(arch):
    from sketchrl.classifiers import build_classifier

    torch.manual_seed(0)
    classifier = build_classifier(arch, ["owl", "bird"]).eval()
    head = classifier.network[-1] if arch == "cnn" else classifier.network.fc
    bitmaps = torch.rand(5, 1, 28, 28)
    features = classifier.features(bitmaps)
    assert features.shape == (5, head.in_features)
    with torch.no_grad():
        logits = classifier(bitmaps)
    torch.testing.assert_close(head(features), logits)
    torch.testing.assert_close(classifier.features(1.0 - bitmaps, ink=0), features)
    assert classifier.features(torch.zeros(0, 1, 28, 28)).shape == (0, head.in_features)


def test_real_drawings_of_the_manifold_score_the_cap(untrained_classifier_dir, shared_assets):
    from sketchrl.classifiers import load_category_bitmaps, subset_indices

    options = {"model": str(untrained_classifier_dir), "category": "owl", "samples": 60, "k": 3}
    reward = build_reward("realism", options)
    assert reward.render_options.ink_on_black and len(reward.real) == 30
    bitmaps = load_category_bitmaps("owl")
    chosen = np.sort(subset_indices(len(bitmaps), "reward")[:60])
    images = torch.from_numpy(bitmaps[chosen]).float().unsqueeze(1) / 255.0
    scores = reward(images, [None] * len(images))
    assert scores.shape == (60,) and scores.dtype == torch.float32
    assert (scores == 1.0).sum() >= 30 and scores.max() == 1.0
    noise = torch.rand(3, 1, 28, 28)
    features = reward.classifier.features(noise).double().numpy()
    real, radii = reward.real.double().numpy(), reward.radii.double().numpy()
    distances = np.linalg.norm(features[:, None, :] - real[None, :, :], axis=2)
    expected = np.minimum((radii[None, :] / distances).max(axis=1), 1.0)
    np.testing.assert_allclose(reward(noise, [None] * 3).numpy(), expected, rtol=1e-4)


def test_realism_reward_errors(untrained_classifier_dir):
    with pytest.raises(ConfigError, match="needs model"):
        build_reward("realism", {})
    model = str(untrained_classifier_dir)
    with pytest.raises(ConfigError, match="k >= 1"):
        build_reward("realism", {"model": model, "k": 0})
    with pytest.raises(ConfigError, match="samples >= k"):
        build_reward("realism", {"model": model, "samples": 3, "k": 3})
    with pytest.raises(ConfigError, match="cap"):
        build_reward("realism", {"model": model, "cap": 0})
