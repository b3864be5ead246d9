"""`sketchrl evaluate`: options, one-line errors, outputs (cheap features; one real run is slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sketchrl.cli.main import main
from sketchrl.data import save_samples


class CheapFeatures:
    """Stands in for the FID Inception so that CLI tests take seconds."""

    name = "cheap-cli-test"

    def __init__(self, device=None, batch_size=50, **options) -> None:
        self.device = device

    def __call__(self, images, progress=False):
        return F.avg_pool2d(images[:, :1].float(), 4).flatten(1).double().numpy()


@pytest.fixture
def cheap_inception(monkeypatch):
    monkeypatch.setattr("sketchrl.evaluate.evaluate.InceptionFeatureExtractor", CheapFeatures)


@pytest.fixture
def samples_file(tmp_path):
    rng = np.random.default_rng(0)
    sketches = []
    for length in rng.integers(8, 30, size=12):
        sketch = np.zeros((length, 3), dtype=np.float32)
        sketch[:, :2] = rng.normal(size=(length, 2))
        sketch[:, 2] = rng.random(length) < 0.2
        sketches.append(sketch)
    return save_samples(tmp_path / "in" / "samples.npz", sketches)


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(["evaluate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--model", "--samples", "--reference", "--out", "-n", "--classifier",
                   "--category", "--reward", "--reward-option", "--clip", "--clip-weights",
                   "--temperature", "--seed", "fid_reliable"):
        assert option in text, option


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--reference", "bird"], "quickdraw:<category>"),
        (["--reward", "nope"], "unknown reward 'nope'"),
        (["--reward-option", "category=bird"], "--reward-option needs --reward"),
        (["--reward", "ssim", "--reward-option", "oops"], "write KEY=VALUE"),
    ],
)
def test_user_mistakes_are_one_line_errors(tmp_path, samples_file, capsys, extra, message):
    args = ["--samples", str(samples_file), "--reference", "quickdraw:bird",
            "--out", str(tmp_path / "out"), *extra]
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_missing_samples_file_is_an_error(tmp_path, capsys, cheap_inception):
    code, _, err = run_cli(["--samples", str(tmp_path / "none.npz"), "--reference",
                            "quickdraw:bird", "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "none.npz" in err and len(err.strip().splitlines()) == 1


def test_evaluate_existing_samples(tmp_path, samples_file, capsys, cheap_inception):
    out_dir = tmp_path / "out"
    code, out, _ = run_cli(["--samples", str(samples_file), "-n", "10", "--reference",
                            "quickdraw:bird", "--out", str(out_dir), "--quiet"], capsys)
    assert code == 0
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["n"] == 10 and metrics["samples"] == str(samples_file)
    assert metrics["fid_reliable"] is False and metrics["fid"] is not None
    assert "| FID (lower is better) |" in out and str(out_dir) in out
    assert (out_dir / "grid.png").is_file() and (out_dir / "samples.npz").is_file()


@pytest.mark.slow
def test_evaluate_a_model_with_classifier_and_reward(tmp_path, capsys, cheap_inception):
    from sketchrl.classifiers import build_classifier, save_classifier
    from sketchrl.classifiers.config import ClassifierConfig

    torch.manual_seed(0)
    config = ClassifierConfig(categories=["owl", "bird", "cat"], arch="cnn")
    classifier_dir = save_classifier(
        build_classifier(config.arch, config.categories).eval(), config, tmp_path / "clf"
    )
    out_dir = tmp_path / "out"
    code, out, _ = run_cli(
        ["--model", "sketchrnn:bird", "-n", "6", "--max-len", "30", "--seed", "2",
         "--reference", "quickdraw:bird", "--out", str(out_dir), "--device", "cpu",
         "--classifier", str(classifier_dir), "--reward", "classifier",
         "--reward-option", f"model={classifier_dir}", "--reward-option", "category=bird",
         "--quiet"],
        capsys,
    )
    assert code == 0
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["model"] == "sketchrnn:bird" and metrics["n"] == 6 and metrics["seed"] == 2
    assert 0.0 <= metrics["classifier_rate"] <= 1.0 and metrics["classifier_target"] == "bird"
    assert metrics["reward_mean_ci_low"] <= metrics["reward_mean"] <= metrics["reward_mean_ci_high"]
    assert "| classifier rate |" in out and "reward_mean (classifier)" in out


@pytest.mark.slow
def test_real_inception_end_to_end(tmp_path, samples_file, capsys):
    out_dir = tmp_path / "out"
    code, out, _ = run_cli(["--samples", str(samples_file), "-n", "8", "--reference",
                            "quickdraw:bird", "--out", str(out_dir), "--device", "cpu",
                            "--quiet"], capsys)
    assert code == 0
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["n"] == 8 and metrics["n_reference"] == 8
    assert metrics["fid"] > 0 and metrics["fid_reliable"] is False
    assert all(0.0 <= metrics[key] <= 1.0 for key in ("precision", "recall", "coverage"))
    from sketchrl.assets import sketchrl_home

    assert len(list((sketchrl_home() / "features").glob("bird-n8-fidhelper-*.npy"))) == 1


@pytest.fixture
def tiny_model_dir(tmp_path):
    from sketchrl.models import SketchRNN, SketchRNNConfig, save_model

    torch.manual_seed(0)
    config = SketchRNNConfig(name="tiny", enc_rnn_size=4, dec_rnn_size=8, z_size=3,
                             num_mixture=2, max_seq_len=12, use_recurrent_dropout=False)
    return save_model(SketchRNN(config), tmp_path / "model")


def test_temperature_semantics_are_recorded(tmp_path, tiny_model_dir, capsys, cheap_inception):
    """Needs sketchrl.evaluate.evaluate_model to record a Temperature's fields."""
    out_dir = tmp_path / "out"
    code, out, _ = run_cli(["--model", str(tiny_model_dir), "-n", "4", "--reference",
                            "quickdraw:bird", "--out", str(out_dir), "--device", "cpu",
                            "--temperature", "0.25", "--temperature-semantics", "magenta-js",
                            "--quiet"], capsys)
    assert code == 0
    assert "sampled at temperature 0.25 (magenta-js: logits / 0.625)" in out
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["temperature"] == 0.25 and metrics["temperature_semantics"] == "magenta-js"
    assert metrics["pen_temperature"] is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--temperature-semantics", "magenta-js"], "--temperature-semantics apply to sampling"),
        (["--pen-temperature", "0.5", "--temperature", "1"], "--temperature, --pen-temperature"),
    ],
)
def test_temperature_options_need_a_model(tmp_path, samples_file, capsys, extra, message):
    code, _, err = run_cli(["--samples", str(samples_file), "--reference", "quickdraw:bird",
                            "--out", str(tmp_path / "out"), *extra], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_skip_bad_reads_a_damaged_ndjson(tmp_path, capsys, cheap_inception):
    """Needs sketchrl.evaluate.evaluate_samples_file to pass skip_bad to load_sketches."""
    good = json.dumps({"word": "bird", "drawing": [[[0, 10, 20, 5], [0, 5, 0, 9]]]})
    ndjson = tmp_path / "bird.ndjson"
    ndjson.write_text("\n".join([good] * 5 + ['{"drawing": 3}'] + [good] * 5) + "\n")
    args = ["--samples", str(ndjson), "--reference", "quickdraw:bird", "--quiet"]
    code, _, err = run_cli([*args, "--out", str(tmp_path / "a")], capsys)
    assert code == 2 and "line 6" in err and "--skip-bad" in err
    code, _, err = run_cli([*args, "--out", str(tmp_path / "b"), "--skip-bad"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["n"] == 10


@pytest.mark.parametrize(
    ("extra", "hint"),
    [
        (["--clip"], "--clip-weights FILE"),
        (["--reward", "clip", "--reward-option", "category=bird"],
         "--reward-option weights=FILE"),
    ],
)
def test_missing_clip_weights_name_evaluate_options(tmp_path, samples_file, capsys, monkeypatch,
                                                     extra, hint):
    import huggingface_hub.constants

    from sketchrl.rewards import clip

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(clip, "probe", lambda url: "cannot reach huggingface.co (test)")
    code, _, err = run_cli(["--samples", str(samples_file), "--reference", "quickdraw:bird",
                            "--out", str(tmp_path / "out"), *extra], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert hint in err and "--set" not in err
    assert not (tmp_path / "out").exists()
