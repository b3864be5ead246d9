"""`sketchrl sample`: output files, seeding, the offline bird model and unknown models."""

from __future__ import annotations

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
