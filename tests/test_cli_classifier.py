"""`sketchrl classifier train` / `predict` through the real command line entry point."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from sketchrl.classifiers import ClassifierConfig, build_classifier, save_classifier
from sketchrl.cli.main import main
from sketchrl.data import load_bitmaps, load_ndjson_stroke3, save_samples


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, shared_assets):
    """A tiny classifier trained through the CLI (owl vs fish, 40 bitmaps each, 1 epoch)."""
    out = tmp_path_factory.mktemp("cli_classifier")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setenv("SKETCHRL_ASSET_URL", str(shared_assets))
        patch.setenv("SKETCHRL_HOME", str(tmp_path_factory.mktemp("home")))
        code = main([
            "classifier", "train", "--categories", "owl,fish", "--arch", "cnn", "--subset",
            "eval", "--epochs", "1", "--batch-size", "16", "--max-per-category", "40",
            "--out", str(out), "--quiet",
        ])
    assert code == 0
    return out, printed.getvalue()


def read_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def check_records(records: list[dict], count: int) -> None:
    assert [r["index"] for r in records] == list(range(count))
    for record in records:
        assert set(record["probs"]) == {"owl", "fish"}
        assert sum(record["probs"].values()) == pytest.approx(1.0, abs=1e-4)
        assert record["category"] == max(record["probs"], key=record["probs"].get)
        assert record["probability"] == record["probs"][record["category"]]


@pytest.mark.slow
def test_train_prints_held_out_accuracy_and_writes_the_model(model_dir):
    model_dir, printed = model_dir
    assert (model_dir / "classifier.safetensors").is_file()
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert printed.startswith(f"held-out accuracy {metrics['held_out_accuracy']:.4f}")
    assert metrics["subset"] == "eval" and metrics["categories"] == ["owl", "fish"]
    assert metrics["train_per_class"] == {"owl": 36, "fish": 36}


@pytest.mark.slow
def test_predict_ndjson_npy_and_samples(model_dir, shared_assets, tmp_path, capsys):
    model_dir, _ = model_dir
    ndjson = shared_assets / "quickdraw_dataset/full/simplified/owl.ndjson"
    assert main(["classifier", "predict", "--model", str(model_dir), str(ndjson)]) == 0
    records = read_lines(capsys.readouterr().out)
    check_records(records, len(load_ndjson_stroke3(ndjson)))

    npy = shared_assets / "quickdraw_dataset/full/numpy_bitmap/fish.npy"
    assert main(["classifier", "predict", "--model", str(model_dir), str(npy)]) == 0
    records = read_lines(capsys.readouterr().out)
    check_records(records, len(load_bitmaps(npy)))
    fish_rate = np.mean([r["category"] == "fish" for r in records])
    assert fish_rate > 0.5  # the classifier learned something about real fish

    samples = tmp_path / "samples.npz"
    save_samples(samples, load_ndjson_stroke3(ndjson)[:3])
    assert main(["classifier", "predict", "--model", str(model_dir), str(samples)]) == 0
    check_records(read_lines(capsys.readouterr().out), 3)


def test_unknown_category_is_a_one_line_error(tmp_path, capsys):
    code = main([
        "classifier", "train", "--categories", "owl,unicorn", "--arch", "cnn", "--epochs", "1",
        "--out", str(tmp_path / "out"), "--quiet",
    ])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "unicorn" in err


def test_predict_errors_are_one_line(tmp_path, capsys, shared_assets):
    assert main(["classifier", "predict", "--model", str(tmp_path), "x.ndjson"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "classifier train" in err
    config = ClassifierConfig(categories=["owl", "fish"], arch="cnn")
    save_classifier(build_classifier("cnn", config.categories).eval(), config, tmp_path / "m")
    for bad_input, named in [
        ("quickdraw:unicorn/numpy_bitmap", "unicorn"),
        (str(tmp_path / "gone.ndjson"), "gone.ndjson"),
    ]:
        assert main(["classifier", "predict", "--model", str(tmp_path / "m"), bad_input]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and named in err


def test_predict_skip_bad_and_corrupt_json_config(untrained_classifier_dir, tmp_path, capsys):
    good = json.dumps({"word": "owl", "drawing": [[[0, 10, 20], [0, 5, 0]]]})
    ndjson = tmp_path / "owl.ndjson"
    ndjson.write_text(f"{good}\nnot json\n{good}\n")
    argv = ["classifier", "predict", "--model", str(untrained_classifier_dir), str(ndjson)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "line 2" in err and "--skip-bad" in err
    assert main([*argv, "--skip-bad"]) == 0
    assert [r["index"] for r in read_lines(capsys.readouterr().out)] == [0, 1]
    (untrained_classifier_dir / "classifier_config.json").write_text('{"epochs": "ten"}')
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "classifier_config.json" in err
