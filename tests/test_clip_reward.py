"""CLIP reward: the real open_clip ViT-B/32 with random weights (no CLIP weights exist here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sketchrl.errors import AssetError, ConfigError
from sketchrl.render import CLIP_OPTIONS, render
from sketchrl.rewards import CLIPReward, build_prompts, build_reward
from sketchrl.rewards import clip as clip_module
from sketchrl.rewards.clip import MissingCLIPWeights


def sketches() -> list[np.ndarray]:
    square = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0], [-10, 0, 0], [0, -10, 1]], np.float32)
    zigzag = np.array([[4, (-1) ** i * 6, 0] for i in range(12)], np.float32)
    cross = np.array([[0, 0, 0], [8, 8, 1], [0, -8, 0], [-8, 8, 1]], np.float32)
    return [square, zigzag, cross]


@pytest.fixture(scope="module")
def clip_reward() -> CLIPReward:
    torch.manual_seed(0)
    return build_reward("clip", {"random_weights": True})


@pytest.fixture(scope="module")
def batch_scores(clip_reward) -> torch.Tensor:
    """Scores of ``sketches()`` scored together (computed once: CLIP on a CPU is slow)."""
    return clip_reward.score(sketches())


def test_prompts():
    assert build_prompts("owl", None, "a sketch of {article} {category}") == [
        "a sketch of an owl", "a sketch of a cat", "a sketch of a dog", "a sketch of a bird",
        "a sketch of a fish",
    ]
    assert build_prompts("bird", None, "{}")[0] == "bird"
    assert "bird" not in build_prompts("bird", None, "{}")[1:]
    assert build_prompts("owl", ["cat"], "a drawing of a {}") == [
        "a drawing of a owl", "a drawing of a cat"
    ]
    assert build_prompts("x", None, "{}", ["an owl", "a tree", "a car"]) == [
        "an owl", "a tree", "a car"
    ]
    with pytest.raises(ConfigError, match="negatives"):
        build_prompts("cat", ["cat", "dog"], "{}")
    with pytest.raises(ConfigError, match="two"):
        build_prompts("owl", None, "{}", ["only one"])
    with pytest.raises(ConfigError, match="template"):
        build_prompts("owl", None, "a sketch of {animal}")


@pytest.mark.slow
def test_scores_are_positive_prompt_probabilities(clip_reward, batch_scores):
    images = render(sketches()[:2], CLIP_OPTIONS)
    probabilities = clip_reward.probabilities(images)
    assert probabilities.shape == (2, 5)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(2))
    assert batch_scores.shape == (3,) and batch_scores.dtype == torch.float32
    torch.testing.assert_close(batch_scores[:2], probabilities[:, 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(clip_reward(images, sketches()[:2]), probabilities[:, 0])
    assert float(probabilities.std()) > 0  # the images and prompts do change the answer


@pytest.mark.slow
def test_batch_size_invariance(clip_reward, batch_scores):
    for index in (0, 2):
        alone = clip_reward.score([sketches()[index]])
        assert alone.shape == (1,)
        assert float(alone[0]) == pytest.approx(float(batch_scores[index]), abs=1e-5)


@pytest.mark.slow
def test_custom_prompts_share_the_model(clip_reward):
    images = render(sketches()[:1], CLIP_OPTIONS)
    prompts = ["a sketch of a tree", "a sketch of a house", "a sketch of a car"]
    three = clip_reward.with_prompts(prompts)
    reordered = clip_reward.with_prompts([prompts[2], prompts[0], prompts[1]])
    assert three.model is clip_reward.model and clip_reward.prompts[0] == "a sketch of an owl"
    p_three, p_reordered = three.probabilities(images), reordered.probabilities(images)
    assert p_three.shape == (1, 3)
    torch.testing.assert_close(p_three.sum(1), torch.ones(1))
    torch.testing.assert_close(p_reordered, p_three[:, [2, 0, 1]], atol=1e-5, rtol=0)


@pytest.mark.slow
def test_preprocessing_uses_open_clip_constants(clip_reward):
    import open_clip

    rgb = render(sketches()[:2], CLIP_OPTIONS)
    expected_mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    torch.testing.assert_close(clip_reward.mean, expected_mean)
    pixels = clip_reward.preprocess(rgb)
    torch.testing.assert_close(pixels, (rgb - expected_mean) / clip_reward.std)
    torch.testing.assert_close(clip_reward.preprocess(rgb[:, :1]), pixels)  # gray -> RGB
    assert clip_reward.preprocess(rgb[..., ::2, ::2]).shape == (2, 3, 224, 224)  # resized


@pytest.mark.slow
def test_local_weights_file_is_loaded(clip_reward, batch_scores, tmp_path):
    path = tmp_path / "clip.pt"
    torch.save(clip_reward.model.state_dict(), path)
    loaded = build_reward("clip", {"weights": str(path)})
    assert float(loaded.score(sketches()[:1])[0]) == pytest.approx(float(batch_scores[0]), abs=1e-5)


@pytest.fixture
def empty_hub_cache(monkeypatch, tmp_path):
    """An empty Hugging Face cache; open_clip's download must never be tried (checked after the
    test: with no network its hub retries take about a minute)."""
    import huggingface_hub.constants
    import open_clip

    def no_download(*args, **kwargs):
        downloads.append(args)
        raise RuntimeError("open_clip tried to download (its retries take a minute offline)")

    downloads: list = []

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # open_clip's cache of URL downloads
    monkeypatch.setattr(open_clip, "download_pretrained", no_download)
    yield tmp_path / "hub"
    assert downloads == [], "a download was tried"


def test_missing_weights_offline_are_one_line_without_a_download(monkeypatch, empty_hub_cache):
    probed = []
    monkeypatch.setattr(clip_module, "probe", lambda url: probed.append(url) or "cannot reach "
                        "huggingface.co (gaierror: no network?)")
    with pytest.raises(MissingCLIPWeights) as error:
        build_reward("clip", {"pretrained": "openai"})
    message = str(error.value)
    assert probed and "huggingface" in probed[0]
    assert "\n" not in message and "not in the local cache" in message
    assert "--clip-weights FILE" in message and "--set reward.weights=FILE" in message
    assert isinstance(error.value, AssetError)
    with pytest.raises(AssetError, match="not found"):
        build_reward("clip", {"weights": str(empty_hub_cache / "missing.pt")})
    with pytest.raises(ConfigError, match="valid: openai"):
        build_reward("clip", {"pretrained": "no-such-tag"})


def test_hf_hub_offline_skips_the_probe(monkeypatch, empty_hub_cache):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(clip_module, "probe", lambda url: pytest.fail("probed while offline"))
    with pytest.raises(MissingCLIPWeights, match="HF_HUB_OFFLINE is set"):
        build_reward("clip", {"pretrained": "openai"})


def test_probe_answers_without_a_server():
    reason = clip_module.probe("https://sketchrl-test.invalid/", timeout=1.0)  # never resolves
    assert reason is not None and "sketchrl-test.invalid" in reason
    assert clip_module.probe("not a url") is not None


def test_cached_hub_weights_are_found_without_network(empty_hub_cache):
    import open_clip

    config = open_clip.get_pretrained_cfg("ViT-B-32", "openai")
    model_id = config["hf_hub"].strip("/")
    snapshot = empty_hub_cache / f"models--{model_id.replace('/', '--')}" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc")
    weights = snapshot / "open_clip_model.safetensors"
    weights.write_bytes(b"not really weights")
    assert clip_module.cached_clip_checkpoint(config) == str(weights)
    path = clip_module.resolve_clip_checkpoint("ViT-B-32", "openai", None)
    assert path == str(weights)
