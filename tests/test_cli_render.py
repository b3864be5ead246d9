"""Tests of `sketchrl render`: files written, inputs accepted, one-line errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from PIL import Image

from sketchrl.cli.main import main
from sketchrl.data import save_samples
from sketchrl.render import RenderOptions, render


def square(side: float) -> np.ndarray:
    points = np.array([(0, 0), (side, 0), (side, side), (0, side), (0, 0)], dtype=np.float32)
    s3 = np.zeros((5, 3), dtype=np.float32)
    s3[:, :2] = np.diff(points, axis=0, prepend=np.zeros((1, 2), dtype=np.float32))
    s3[-1, 2] = 1.0
    return s3


def two_strokes() -> np.ndarray:
    return np.array([[0, 0, 0], [0, 3, 1], [2, -3, 0], [0, 3, 1]], dtype=np.float32)


def test_render_ndjson_writes_png_svg_and_grid_and_keeps_the_folder(shared_assets, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("not mine")
    ndjson = shared_assets / "quickdraw_dataset" / "full" / "simplified" / "bird.ndjson"
    args = ["render", str(ndjson), "--out", str(out), "--size", "64", "--limit", "3"]
    assert main(args + ["--no-progress"]) == 0
    names = sorted(path.name for path in out.iterdir())
    expected_names = [f"000{i}.{ext}" for i in range(3) for ext in ("png", "svg")]
    assert names == sorted(expected_names + ["grid.png", "keep.txt"])
    assert (out / "keep.txt").read_text() == "not mine"
    with Image.open(out / "0002.png") as image:
        assert image.size == (64, 64) and image.mode == "L"
        pixels = np.asarray(image)
        assert pixels.min() < 50 and pixels[0, 0] == 255  # ink on white paper
    with Image.open(out / "grid.png") as grid:
        assert grid.size == (2 + 2 * 66, 2 + 2 * 66)  # 3 images on a 2 x 2 grid
    root = ElementTree.parse(out / "0000.svg").getroot()
    assert root.get("width") == "64"
    assert root.findall(".//{http://www.w3.org/2000/svg}path")


def test_render_samples_npz_matches_the_library(tmp_path):
    sketches = [square(5.0), two_strokes(), np.zeros((0, 3), dtype=np.float32)]
    samples = save_samples(tmp_path / "samples.npz", sketches)
    out = tmp_path / "renders"
    rc = main(["render", str(samples), "--out", str(out), "--size", "48", "--line-width", "3"])
    assert rc == 0
    expected = render(sketches, RenderOptions(size=48, line_width=3.0))
    for index in range(3):
        with Image.open(out / f"{index:04d}.png") as image:
            pixels = np.asarray(image, dtype=np.float32) / 255.0
        np.testing.assert_allclose(pixels, expected[index, 0].numpy(), atol=1 / 255)
    assert np.all(pixels == 1.0)  # the empty sketch is blank paper
    blank_svg = ElementTree.parse(out / "0002.svg").getroot()
    assert not blank_svg.findall(".//{http://www.w3.org/2000/svg}path")


def test_render_sketchrnn_npz_reads_the_chosen_split(tmp_path):
    splits = {
        "train": [square(4.0)] * 3,
        "valid": [square(4.0)] * 2,
        "test": [two_strokes()] * 4,
    }
    archive = tmp_path / "cat.npz"
    objects = {}
    for name, sketches in splits.items():
        objects[name] = np.empty(len(sketches), dtype=object)
        objects[name][:] = [sketch.astype(np.int16) for sketch in sketches]
    np.savez(archive, **objects)
    for split, count in (("valid", 2), ("test", 4)):
        out = tmp_path / split
        assert main(["render", str(archive), "--out", str(out), "--split", split]) == 0
        assert len(list(out.glob("*.svg"))) == count


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda tmp: tmp / "missing.ndjson", "does not exist"),
        (lambda tmp: tmp / "notes.txt", "cannot read sketches"),
    ],
)
def test_bad_input_is_a_one_line_error(tmp_path, capsys, make_input, message):
    path = make_input(tmp_path)
    if path.suffix == ".txt":
        path.write_text("hello")
    assert main(["render", str(path), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("sketchrl render: error:") and message in error
    assert "\n" not in error
    assert not (tmp_path / "out").exists()


def test_output_that_is_a_file_is_a_one_line_error(tmp_path, capsys):
    samples = save_samples(tmp_path / "samples.npz", [square(3.0)])
    taken = tmp_path / "taken"
    taken.write_text("a file")
    assert main(["render", str(samples), "--out", str(taken)]) == 2
    error = capsys.readouterr().err.strip()
    assert "not a folder" in error and "\n" not in error
    assert taken.read_text() == "a file"


def test_help_describes_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    text = capsys.readouterr().out
    for option in ("--out", "--size", "--line-width", "--limit", "--split", "--grid",
                   "--skip-bad"):
        assert option in text


def ndjson_with_a_bad_line(path):
    good = json.dumps({"word": "cat", "drawing": [[[0, 10, 20], [0, 5, 0]]]})
    path.write_text("\n".join([good, '{"word": "cat", "drawing": [[[0, 1], [0]]]}', good]) + "\n")
    return path


def test_skip_bad_skips_bad_ndjson_lines_and_the_error_names_it(tmp_path, capsys):
    path = ndjson_with_a_bad_line(tmp_path / "cat.ndjson")
    assert main(["render", str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    error = capsys.readouterr().err.strip()
    assert "cat.ndjson, line 2" in error and "--skip-bad" in error and "\n" not in error
    assert not (tmp_path / "out").exists()
    out = tmp_path / "kept"
    assert main(["render", str(path), "--out", str(out), "--skip-bad", "--no-progress"]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["0000.png", "0001.png", "grid.png"]


def test_huge_image_size_is_refused(tmp_path, capsys):
    samples = save_samples(tmp_path / "samples.npz", [square(3.0)])
    with pytest.raises(SystemExit) as exit_info:
        main(["render", str(samples), "--out", str(tmp_path / "o"), "--size", "100000"])
    error = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "more than the 4096 allowed" in error
