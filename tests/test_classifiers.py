"""Quick, Draw! classifiers: disjoint data, a tiny real training run, save/load, predict_proba."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sketchrl.classifiers import (
    NETWORKS,
    ClassifierConfig,
    build_classifier,
    load_classifier,
    prepare_data,
    save_classifier,
    split_category,
    subset_indices,
    train_classifier,
)
from sketchrl.classifiers.training import held_out_metrics, load_category_bitmaps
from sketchrl.errors import AssetError, ConfigError, DataError

TINY = dict(
    categories=["owl", "cat", "fish"], arch="cnn", max_per_category=60, holdout_fraction=0.25,
    epochs=1, batch_size=16, lr=3e-3, seed=0,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_assets):
    """One tiny real training run (180 bitmaps, 1 epoch), shared by the tests below."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKETCHRL_ASSET_URL", str(shared_assets))
        patch.setenv("SKETCHRL_HOME", str(tmp_path_factory.mktemp("home")))
        out = tmp_path_factory.mktemp("classifier")
        metrics = train_classifier(ClassifierConfig(**TINY), out, progress=False)
    return out, metrics


def test_subsets_are_disjoint_halves_fixed_by_the_split_seed():
    np.random.seed(123)
    torch.manual_seed(123)
    for count in (7, 800, 4000):
        reward, evaluation = subset_indices(count, "reward"), subset_indices(count, "eval")
        assert not set(reward) & set(evaluation)
        assert sorted([*reward, *evaluation]) == list(range(count))
        assert abs(len(reward) - len(evaluation)) <= 1
    first = subset_indices(800, "reward")
    np.random.seed(7)
    torch.manual_seed(7)
    np.testing.assert_array_equal(subset_indices(800, "reward"), first)  # global seeds: no effect
    assert not np.array_equal(np.sort(first), np.arange(400))  # shuffled, not the first half


def test_held_out_split_and_cap():
    train, held_out = split_category(800, "reward", 0.1, None)
    assert len(held_out) == 40 and len(train) == 360
    assert not set(train) & set(held_out)
    assert set(train) | set(held_out) == set(subset_indices(800, "reward"))
    train, held_out = split_category(800, "eval", 0.25, 100)
    assert (len(train), len(held_out)) == (75, 25)
    assert set(train) | set(held_out) <= set(subset_indices(800, "eval"))


def test_prepare_data_uses_the_subset_bitmaps(shared_assets):
    two = {**TINY, "categories": ["owl", "fish"]}
    data = prepare_data(ClassifierConfig(**two))
    other = prepare_data(ClassifierConfig(**{**two, "subset": "eval"}))
    owl = load_category_bitmaps("owl")
    train, held_out = split_category(len(owl), "reward", 0.25, 60)
    np.testing.assert_array_equal(data.train_x[data.train_y == 0, 0].numpy(), owl[np.sort(train)])
    np.testing.assert_array_equal(
        data.held_out_x[data.held_out_y == 0, 0].numpy(), owl[np.sort(held_out)]
    )
    assert data.train_counts(2) == [45, 45] and len(data.held_out_y) == 30
    assert not torch.equal(data.train_x, other.train_x)


@pytest.mark.slow
def test_tiny_training_beats_chance_and_saves_everything(trained):
    out, metrics = trained
    assert {p.name for p in out.iterdir()} >= {
        "classifier.safetensors", "classifier_config.json", "metrics.json"
    }
    assert metrics["held_out_count"] == 45 and metrics["train_count"] == 135
    assert metrics["held_out_accuracy"] > 0.5  # chance: 1/3
    assert set(metrics["held_out_per_class_accuracy"]) == {"owl", "cat", "fish"}
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert ClassifierConfig.load_json(out / "classifier_config.json") == ClassifierConfig(**TINY)


@pytest.mark.slow
def test_saved_weights_reproduce_the_reported_accuracy(trained):
    out, metrics = trained
    classifier = load_classifier(out)
    data = prepare_data(ClassifierConfig(**TINY))
    again = held_out_metrics(classifier, data.held_out_x, data.held_out_y)
    assert again["held_out_accuracy"] == pytest.approx(metrics["held_out_accuracy"])
    assert classifier.categories == ["owl", "cat", "fish"] and not classifier.training


@pytest.mark.parametrize("arch", ["cnn", pytest.param("resnet18", marks=pytest.mark.slow)])
def test_save_load_round_trip_gives_identical_probabilities(tmp_path, arch):
    torch.manual_seed(1)
    config = ClassifierConfig(categories=["owl", "cat"], arch=arch)
    classifier = build_classifier(arch, config.categories)
    with torch.no_grad():
        classifier.train()(torch.rand(4, 1, 28, 28))  # move the batch-norm statistics
    classifier.eval()
    bitmaps = torch.rand(5, 1, 28, 28)
    save_classifier(classifier, config, tmp_path)
    loaded = load_classifier(tmp_path)
    torch.testing.assert_close(loaded.predict_proba(bitmaps), classifier.predict_proba(bitmaps),
                               atol=0, rtol=0)


def test_predict_proba_conventions():
    torch.manual_seed(2)
    classifier = build_classifier("cnn", ["a", "b", "c"]).eval()
    bitmaps = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    probs = classifier.predict_proba(bitmaps)
    assert probs.shape == (6, 3)
    torch.testing.assert_close(probs.sum(1), torch.ones(6))
    floats = bitmaps.float() / 255
    torch.testing.assert_close(classifier.predict_proba(floats), probs)
    torch.testing.assert_close(classifier.predict_proba(1 - floats, ink=0), probs)
    torch.testing.assert_close(classifier.predict_proba(floats[:, 0]), probs)
    assert classifier.predict_proba(floats[:0]).shape == (0, 3)
    classifier.train()
    classifier.predict_proba(floats)
    assert classifier.training  # the mode is given back
    with pytest.raises(ValueError, match="28, 28"):
        classifier.predict_proba(torch.rand(2, 1, 32, 32))


def test_config_validation_and_errors(tmp_path, shared_assets):
    with pytest.raises(ConfigError, match="valid: resnet18, cnn"):
        ClassifierConfig(arch="vgg")
    with pytest.raises(ConfigError, match="subset"):
        ClassifierConfig(subset="test")
    with pytest.raises(ConfigError, match="two"):
        ClassifierConfig(categories=["owl"])
    with pytest.raises(AssetError, match="unicorn"):
        train_classifier(ClassifierConfig(**{**TINY, "categories": ["owl", "unicorn"]}),
                         tmp_path / "out", progress=False)
    with pytest.raises(DataError, match="classifier train"):
        load_classifier(tmp_path)


def test_architecture_names_match_the_networks_and_need_no_torch():
    import subprocess
    import sys

    from sketchrl import classifiers
    from sketchrl.classifiers.config import ARCHITECTURES

    assert list(ARCHITECTURES) == list(NETWORKS)
    assert sorted(classifiers.__all__) == sorted(classifiers._WHERE)
    code = ("import sys\nfrom sketchrl.classifiers.config import ClassifierConfig\n"
            "ClassifierConfig()\nprint('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)
    assert result.stdout.strip() == "False"


def test_train_checks_the_folder_and_device_before_loading_data(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    config = ClassifierConfig(**{**TINY, "categories": ["owl", "unicorn"]})
    with pytest.raises(DataError, match="is a file, not a folder"):
        train_classifier(config, blocker / "out", progress=False)
