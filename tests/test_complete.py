"""Completion: sketchrl.models.completion, the two-colour rendering and `sketchrl complete`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from sketchrl.cli.main import main
from sketchrl.data import load_ndjson_stroke3, load_samples, save_samples
from sketchrl.errors import ConfigError, DataError
from sketchrl.models import SketchRNN, SketchRNNConfig, load_model, save_model
from sketchrl.models.completion import complete_sketch, load_drawing, prepare_prefix
from sketchrl.models.mixture import Temperature
from sketchrl.render import RenderOptions, render
from sketchrl.render.two_colour import render_two_colour, split_at, two_colour_svg

BIRDS = "quickdraw_dataset/full/simplified/bird.ndjson"


@pytest.fixture(scope="module")
def bird(shared_assets):
    return load_model(shared_assets / "quickdraw-models/sketchRNN/large_models/bird.gen.json")


@pytest.fixture
def birds_file(shared_assets):
    return shared_assets / BIRDS


def first_bird(birds_file, rows: int = 15) -> np.ndarray:
    return load_ndjson_stroke3(birds_file, limit=1)[0][:rows]


def test_completions_start_with_the_prefix_in_model_units(bird, birds_file):
    pixels = first_bird(birds_file)
    result = complete_sketch(bird, pixels, 6, units="pixels", temperature=0.5, seed=3,
                             max_len=60)
    expected = pixels.copy()
    expected[:, :2] /= bird.config.scale_factor
    np.testing.assert_allclose(result.prefix, expected, rtol=1e-6)
    assert result.starts == [len(pixels)] * 6
    for sketch, rest in zip(result.sketches, result.continuations(), strict=True):
        np.testing.assert_allclose(sketch[: len(pixels)], expected, rtol=1e-6)
        assert len(sketch) <= 60 and len(rest) == len(sketch) - len(pixels)
    assert sum(len(rest) for rest in result.continuations()) > 6 * 5
    again = complete_sketch(bird, result.prefix, 6, temperature=0.5, seed=3, max_len=60)
    for a, b in zip(result.sketches, again.sketches, strict=True):
        np.testing.assert_array_equal(a, b)
    other = complete_sketch(bird, result.prefix, 6, temperature=0.5, seed=4, max_len=60)
    assert any(len(a) != len(b) or not np.array_equal(a, b)
               for a, b in zip(result.sketches, other.sketches, strict=True))


def test_the_continuation_depends_on_the_prefix(bird, birds_file):
    """Same seed, different prefix: the model's rows differ (the prefix went through it)."""
    a = complete_sketch(bird, first_bird(birds_file, 10), 4, units="pixels", seed=0, max_len=40)
    b = complete_sketch(bird, first_bird(birds_file, 12), 4, units="pixels", seed=0, max_len=40)
    first_a = np.stack([rest[0] for rest in a.continuations() if len(rest)])
    first_b = np.stack([rest[0] for rest in b.continuations() if len(rest)])
    assert not np.allclose(first_a[: len(first_b)], first_b[: len(first_a)])


def test_prefix_options_and_errors(bird, birds_file):
    drawing = first_bird(birds_file, 10)
    assert len(prepare_prefix(drawing, bird, units="pixels", fraction=0.5)) == 5
    assert len(prepare_prefix(drawing, bird, fraction=0.01)) == 1
    np.testing.assert_array_equal(prepare_prefix(drawing, bird), drawing)
    with pytest.raises(ConfigError, match="fraction"):
        prepare_prefix(drawing, bird, fraction=1.5)
    with pytest.raises(ConfigError, match="units"):
        prepare_prefix(drawing, bird, units="inches")
    with pytest.raises(DataError, match="empty"):
        prepare_prefix(np.zeros((0, 3)), bird)
    with pytest.raises(ConfigError, match="leaves no room"):
        complete_sketch(bird, drawing, 2, max_len=10)


def test_vae_completes_with_a_prior_z():
    torch.manual_seed(0)
    vae = SketchRNN(SketchRNNConfig(enc_rnn_size=8, dec_rnn_size=16, z_size=4, num_mixture=3,
                                    max_seq_len=30, use_recurrent_dropout=False)).eval()
    prefix = np.array([[0.5, 0.2, 0], [0.3, -0.1, 1]], dtype=np.float32)
    result = complete_sketch(vae, prefix, 3, temperature=Temperature(0.8), seed=0)
    assert all(np.array_equal(s[:2], prefix) for s in result.sketches)


def test_load_drawing_formats(tmp_path, birds_file):
    drawing, units = load_drawing(birds_file, 2)
    assert units == "pixels"
    np.testing.assert_array_equal(drawing, load_ndjson_stroke3(birds_file, limit=3)[2])
    np.testing.assert_array_equal(load_drawing("quickdraw:bird/simplified", 2)[0], drawing)
    samples = [np.array([[1, 2, 0], [3, 4, 1]], np.float32), np.array([[5, 6, 1]], np.float32)]
    save_samples(tmp_path / "samples.npz", samples)
    drawing, units = load_drawing(tmp_path / "samples.npz", 1)
    assert units == "model" and drawing.tolist() == [[5, 6, 1]]
    (tmp_path / "one.json").write_text(json.dumps([[1, 2, 0], [3, 4, 1]]))
    drawing, units = load_drawing(tmp_path / "one.json")
    assert units == "model" and drawing.tolist() == [[1, 2, 0], [3, 4, 1]]
    (tmp_path / "many.json").write_text(json.dumps([[[1, 2, 0]], [[3, 4, 1], [5, 6, 1]]]))
    assert load_drawing(tmp_path / "many.json", 1)[0].tolist() == [[3, 4, 1], [5, 6, 1]]


def test_load_drawing_errors(tmp_path, birds_file):
    with pytest.raises(DataError, match="does not exist"):
        load_drawing(tmp_path / "missing.ndjson")
    count = len(load_ndjson_stroke3(birds_file))
    with pytest.raises(ConfigError, match=f"out of range: .* holds {count} drawings"):
        load_drawing(birds_file, count)
    (tmp_path / "empty.json").write_text(json.dumps([[[1, 2, 0]], []]))
    with pytest.raises(DataError, match="drawing 1 .* is empty"):
        load_drawing(tmp_path / "empty.json", 1)
    (tmp_path / "bad.json").write_text(json.dumps([[1, 2], [3, 4]]))
    with pytest.raises(DataError, match="shape"):
        load_drawing(tmp_path / "bad.json")
    (tmp_path / "x.txt").write_text("1 2 0")
    with pytest.raises(DataError, match="cannot read a drawing"):
        load_drawing(tmp_path / "x.txt")


def test_two_colour_render_keeps_the_whole_drawings_frame():
    rng = np.random.default_rng(0)
    sketch = np.zeros((30, 3), dtype=np.float32)
    sketch[:, :2] = rng.normal(size=(30, 2))
    sketch[[9, 19, 29], 2] = 1
    options = RenderOptions(size=96, channels=3)
    for start in (0, 10, 14, 30):
        image = render_two_colour([sketch], [start], options)[0]
        plain = render([sketch], options)[0]
        # Same ink, same place as the plain render (up to antialiased edges of the red part).
        inked, plain_inked = image[1] < 0.9, plain[0] < 0.9
        assert int((inked ^ plain_inked).sum()) <= 0.03 * int(plain_inked.sum())
        rows, cols = np.nonzero(inked.numpy())
        plain_rows, plain_cols = np.nonzero(plain_inked.numpy())
        assert abs(rows.min() - plain_rows.min()) <= 1 and abs(cols.max() - plain_cols.max()) <= 1
        red = (image[0] > 0.5) & (image[1] < 0.4)
        black = image.max(dim=0).values < 0.3
        assert bool(red.any()) == (start < 30) and bool(black.any()) == (start > 0)
    prefix, rest = split_at(sketch, 14)  # the prefix ends with the pen down: rest starts there
    assert len(prefix) == 14 and len(rest) == 17
    np.testing.assert_allclose(rest[0, :2], sketch[:14, :2].sum(axis=0), rtol=1e-6)
    prefix, rest = split_at(sketch, 10)  # pen lifted after row 9: no joining segment
    assert len(rest) == 20
    np.testing.assert_allclose(rest[0, :2], sketch[:11, :2].sum(axis=0), rtol=1e-6)
    svg = two_colour_svg(sketch, 10, size=96)
    assert svg.count('class="prefix"') == 1 and 'stroke="#d62728"' in svg


def test_cli_writes_two_colour_files(tmp_path, birds_file, capsys):
    out = tmp_path / "done"
    assert main(["complete", "--model", "sketchrnn:bird", "--prefix", str(birds_file),
                 "--index", "1", "--prefix-fraction", "0.5", "-n", "3", "--out", str(out),
                 "--seed", "2", "--max-len", "90", "--temperature-semantics", "magenta-js",
                 "--quiet"]) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "3 completions of drawing 1" in line and "magenta-js" in line
    names = sorted(p.name for p in out.iterdir())
    assert names == ["0000.png", "0000.svg", "0001.png", "0001.svg", "0002.png", "0002.svg",
                     "grid.png", "samples.npz"]
    drawing = load_ndjson_stroke3(birds_file, limit=2)[1]
    given = drawing[: int(np.ceil(len(drawing) / 2))].copy()
    given[:, :2] /= load_model("sketchrnn:bird").config.scale_factor
    for sketch in load_samples(out / "samples.npz"):
        np.testing.assert_allclose(sketch[: len(given)], given, rtol=1e-5)
        assert len(sketch) <= 90
    pixels = np.asarray(Image.open(out / "0000.png").convert("RGB")).astype(int)
    black = (pixels.max(axis=2) < 80).sum()
    red = ((pixels[..., 0] > 150) & (pixels[..., 1] < 100)).sum()
    assert black > 50 and red > 50
    assert 'class="prefix"' in (out / "0000.svg").read_text()


def test_cli_units_and_a_vae_model(tmp_path, capsys):
    torch.manual_seed(0)
    vae = SketchRNN(SketchRNNConfig(enc_rnn_size=8, dec_rnn_size=16, z_size=4, num_mixture=3,
                                    max_seq_len=30, scale_factor=10.0,
                                    use_recurrent_dropout=False)).eval()
    save_model(vae, tmp_path / "vae")
    (tmp_path / "start.json").write_text(json.dumps([[10, 0, 0], [0, 10, 1]]))
    assert main(["complete", "--model", str(tmp_path / "vae"), "--prefix",
                 str(tmp_path / "start.json"), "--prefix-units", "pixels", "-n", "2",
                 "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert "a prior z each" in capsys.readouterr().out
    for sketch in load_samples(tmp_path / "out" / "samples.npz"):
        assert sketch[:2].tolist() == [[1, 0, 0], [0, 1, 1]]


def test_cli_errors_are_one_line_and_come_before_any_work(tmp_path, birds_file, capsys):
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty.json").write_text("[[]]")
    common = ["--model", "sketchrnn:bird", "-n", "2", "--quiet"]
    cases = [
        (["--prefix", str(tmp_path / "missing.ndjson"), "--out", str(tmp_path / "o")],
         "does not exist"),
        (["--prefix", str(birds_file), "--index", "999", "--out", str(tmp_path / "o")],
         "out of range"),
        (["--prefix", str(tmp_path / "empty.json"), "--out", str(tmp_path / "o")], "empty"),
        (["--prefix", str(birds_file), "--out", str(tmp_path / "file" / "o")], "not a folder"),
        (["--prefix", str(tmp_path / "missing.ndjson"), "--out", str(tmp_path / "file")],
         "not a folder"),
        (["--prefix", str(birds_file), "--out", str(tmp_path / "o"), "--temperature", "0"],
         "temperature"),
        (["--prefix", str(birds_file), "--out", str(tmp_path / "o"), "--max-len", "3"],
         "leaves no room"),
        (["--prefix", str(birds_file), "--out", str(tmp_path / "o"), "--prefix-fraction", "0"],
         "--prefix-fraction"),
    ]
    for arguments, message in cases:
        assert main(["complete", *common, *arguments]) == 2, arguments
        error = capsys.readouterr().err.strip()
        assert "\n" not in error and message in error, (arguments, error)
    assert not (tmp_path / "o").exists()
