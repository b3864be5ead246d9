"""`sketchrl sample`: output files, seeding, the offline bird model and unknown models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from sketchrl.cli.main import main
from sketchrl.data import load_samples
from sketchrl.models import SketchRNN, SketchRNNConfig, save_model


@pytest.fixture
def tiny_model_dir(tmp_path):
    torch.manual_seed(0)
    config = SketchRNNConfig(name="tiny", enc_rnn_size=4, dec_rnn_size=8, z_size=3,
                             num_mixture=2, max_seq_len=15, use_recurrent_dropout=False)
    model = SketchRNN(config)
    with torch.no_grad():
        model.decoder.output.bias[1] = 1.0  # some pen lifts: several strokes per sketch
    return save_model(model, tmp_path / "model")


def run_sample(*args: str) -> int:
    return main(["sample", "--quiet", "--device", "cpu", *args])


def test_sample_writes_grid_svgs_and_samples(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = run_sample("--model", str(tiny_model_dir), "-n", "5", "--seed", "3", "--out",
                      str(out), "--batch-size", "2", "--temperature", "0.7")
    assert code == 0
    assert "5 sketches from tiny" in capsys.readouterr().out
    sketches = load_samples(out / "samples.npz")
    assert len(sketches) == 5 and all(len(s) <= 15 for s in sketches)
    with np.load(out / "samples.npz") as archive:
        assert archive["strokes"].dtype == np.float32
        assert archive["lengths"].tolist() == [len(s) for s in sketches]
    svgs = sorted(out.glob("*.svg"))
    assert [p.name for p in svgs] == [f"{i:04d}.svg" for i in range(5)]
    assert svgs[0].read_text().startswith("<svg")
    with Image.open(out / "grid.png") as grid:
        assert grid.size[0] > 128 and grid.size[1] >= 128

    again = tmp_path / "again"
    assert run_sample("--model", str(tiny_model_dir), "-n", "5", "--seed", "3", "--out",
                      str(again), "--batch-size", "2", "--temperature", "0.7") == 0
    for a, b in zip(sketches, load_samples(again / "samples.npz"), strict=True):
        np.testing.assert_array_equal(a, b)
    other = tmp_path / "other"
    assert run_sample("--model", str(tiny_model_dir), "-n", "5", "--seed", "4", "--out",
                      str(other), "--batch-size", "2", "--temperature", "0.7") == 0
    assert any(len(a) != len(b) or not np.array_equal(a, b)
               for a, b in zip(sketches, load_samples(other / "samples.npz"), strict=True))


def test_sample_bird_from_the_offline_mirror(shared_assets, tmp_path):
    out = tmp_path / "bird"
    assert run_sample("--model", "sketchrnn:bird", "-n", "4", "--seed", "0", "--out",
                      str(out), "--max-len", "30") == 0
    sketches = load_samples(out / "samples.npz")
    assert len(sketches) == 4 and max(len(s) for s in sketches) <= 30
    assert (out / "grid.png").is_file() and len(list(out.glob("*.svg"))) == 4


@pytest.mark.parametrize("spec, expected", [
    ("no_such_model", "sketchrnn:<category>"),
    ("sketchrnn:owl", "bird"),  # the mirror lists its categories
])
def test_unknown_model_is_one_line_and_exit_2(tmp_path, capsys, shared_assets, spec, expected):
    code = run_sample("--model", spec, "-n", "2", "--out", str(tmp_path / "x"))
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("sketchrl sample: error:")
    assert expected in err
    assert not (tmp_path / "x").exists()


def test_temperature_choices_match_the_library():
    from sketchrl.cli import sample
    from sketchrl.models import mixture

    assert sample.TEMPERATURE_SEMANTICS == tuple(mixture.TEMPERATURE_SEMANTICS)
    assert set(sample.SIGMA_SCALES) == set(mixture.SIGMA_SCALES)


def test_help_says_which_semantics_is_which(capsys):
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--pen-temperature" in text and "--temperature-semantics {paper,magenta-js}" in text
    assert "paper (default): logits / T, sigma * sqrt(T)" in text
    assert "magenta-js: logits / (0.5 + 0.5 T), sigma * sqrt(T), as @magenta/sketch" in text


@pytest.mark.parametrize(
    ("options", "divisor", "shown"),
    [
        (["--temperature-semantics", "magenta-js"], 0.625, "0.25 (magenta-js: logits / 0.625)"),
        (["--pen-temperature", "0.8"], 0.8, "0.25 (paper: logits / 0.8)"),
        ([], 0.25, "0.25 (paper)"),
    ],
)
def test_temperature_semantics_are_used_and_recorded(tiny_model_dir, tmp_path, capsys,
                                                     options, divisor, shown):
    from sketchrl.models import load_model, sample_sketches
    from sketchrl.models.mixture import Temperature

    out = tmp_path / "out"
    assert run_sample("--model", str(tiny_model_dir), "-n", "6", "--seed", "1", "--temperature",
                      "0.25", "--out", str(out), *options) == 0
    assert f"(temperature {shown}, seed 1)" in capsys.readouterr().out
    record = json.loads((out / "sample.json").read_text())
    assert record["temperature"] == 0.25 and record["logit_divisor"] == pytest.approx(divisor)
    assert record["temperature_semantics"] == (
        "magenta-js" if "magenta-js" in options else "paper")
    pen = float(options[1]) if "--pen-temperature" in options else None
    expected = sample_sketches(
        load_model(str(tiny_model_dir)), 6, temperature=Temperature(0.25, pen, record[
            "temperature_semantics"]), batch_size=500, generator=torch.Generator().manual_seed(1))
    for a, b in zip(load_samples(out / "samples.npz"), expected, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("options", [["--temperature", "0"], ["--pen-temperature", "-1"]])
def test_bad_temperatures_are_one_line(tiny_model_dir, tmp_path, capsys, options):
    code = run_sample("--model", str(tiny_model_dir), "--out", str(tmp_path / "x"), *options)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "temperature" in err
    assert not (tmp_path / "x").exists()


def test_absurd_sample_counts_are_refused_up_front(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_sample("--model", "sketchrnn:bird", "-n", "1000000000", "--out", str(tmp_path / "x"))
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1
    assert "more than the 100,000 one run makes" in err
    assert not (tmp_path / "x").exists()


def test_rerun_removes_only_the_stale_files_it_wrote(tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    assert run_sample("--model", str(tiny_model_dir), "-n", "5", "--out", str(out)) == 0
    (out / "keep.txt").write_text("mine")
    (out / "notes.svg").write_text("<svg/>")
    assert run_sample("--model", str(tiny_model_dir), "-n", "2", "--grid", "0",
                      "--out", str(out)) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "0000.svg", "0001.svg", "keep.txt", "notes.svg", "sample.json", "samples.npz"]
    assert json.loads((out / "sample.json").read_text())["files"] == ["0000.svg", "0001.svg"]
    assert len(load_samples(out / "samples.npz")) == 2


def test_files_without_a_manifest_are_never_removed(tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "0007.svg").write_text("<svg>not from sketchrl</svg>")
    assert run_sample("--model", str(tiny_model_dir), "-n", "2", "--out", str(out)) == 0
    assert (out / "0007.svg").read_text() == "<svg>not from sketchrl</svg>"
