"""Data loaders: sketch-rnn npz (safely), ndjson, bitmaps, samples, dispatch, StrokeDataset."""

from __future__ import annotations

import io
import json
import logging
import os
import struct
import zipfile

import numpy as np
import pytest
import torch
from numpy.lib import format as npy_format
from torch.utils.data import DataLoader

from sketchrl.data import (
    StrokeDataset,
    load_bitmaps,
    load_ndjson,
    load_ndjson_stroke3,
    load_samples,
    load_sketches,
    load_sketchrnn_npz,
    save_samples,
)
from sketchrl.errors import ConfigError, DataError
from sketchrl.strokes import drawing_to_stroke3, stroke3_to_stroke5

RNG = np.random.default_rng(0)


def random_sketch(rows: int, dtype=np.int16) -> np.ndarray:
    s3 = np.column_stack([RNG.integers(-40, 40, (rows, 2)), RNG.random(rows) < 0.2])
    s3[-1, 2] = 1
    return s3.astype(dtype)


def object_array(items) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    array[:] = list(items)
    return array


def sketchrnn_npz(path, splits: dict[str, list[np.ndarray]]):
    np.savez(path, **{name: object_array(items) for name, items in splits.items()})
    return path


# ---------------------------------------------------------------- sketch-rnn npz


@pytest.mark.parametrize("dtype", [np.int16, np.float64])
def test_load_sketchrnn_npz(tmp_path, dtype):
    splits = {
        "train": [random_sketch(n, dtype) for n in (5, 9, 3)],
        "valid": [random_sketch(7, dtype)],
        "test": [random_sketch(4, dtype), random_sketch(11, dtype)],
    }
    loaded = load_sketchrnn_npz(sketchrnn_npz(tmp_path / "cat.npz", splits))
    assert set(loaded) == {"train", "valid", "test"}
    for name, sketches in splits.items():
        assert len(loaded[name]) == len(sketches)
        for got, want in zip(loaded[name], sketches, strict=True):
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, want.astype(np.float32))


class RunsShell:
    """An object whose pickle calls os.system when unpickled."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_malicious_npz_is_rejected_without_running(tmp_path):
    marker = tmp_path / "pwned"
    payload = object_array([random_sketch(3), RunsShell(f"touch {marker}")])
    path = tmp_path / "evil.npz"
    np.savez(path, train=payload, valid=object_array([random_sketch(2)]), test=payload)
    with pytest.raises(DataError, match="system.*not allowed"):
        load_sketchrnn_npz(path)
    assert not marker.exists()
    # The file really is malicious: numpy's own pickle loading runs the command.
    np.load(path, allow_pickle=True)["train"]
    assert marker.exists()


def py2_pickle_of_int16_arrays(arrays: list[np.ndarray]) -> bytes:
    """Opcodes of a Python 2 pickle (numpy 1 names, byte strings) of an object array."""

    def text(raw: bytes) -> bytes:  # py2 str: SHORT_BINSTRING / BINSTRING
        size = len(raw)
        return b"U" + bytes([size]) + raw if size < 256 else b"T" + struct.pack("<i", size) + raw

    new_array = b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + text(b"b")
    new_array += b"\x87R"

    def dtype(code: bytes, order: bytes, flags: int) -> bytes:
        state = b"(K\x03" + text(order) + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK"
        return b"cnumpy\ndtype\n" + text(code) + b"K\x00K\x01\x87R" + state + bytes([flags]) + b"tb"

    body = new_array + b"(K\x01K" + bytes([len(arrays)]) + b"\x85" + dtype(b"O8", b"|", 63)
    body += b"\x89]("
    for array in arrays:
        raw = np.ascontiguousarray(array, "<i2").tobytes()
        shape = b"M" + struct.pack("<H", len(array)) + b"K\x03\x86"
        body += new_array + b"(K\x01" + shape + dtype(b"i2", b"<", 0) + b"\x89" + text(raw) + b"tb"
    return b"\x80\x02" + body + b"etb."


def test_python2_npz_as_in_the_official_files(tmp_path):
    splits = {
        "train": [random_sketch(6), random_sketch(300)],
        "valid": [random_sketch(2)],
        "test": [random_sketch(4)],
    }
    path = tmp_path / "py2.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for name, sketches in splits.items():
            member = io.BytesIO()
            header = {"descr": "|O", "fortran_order": False, "shape": (len(sketches),)}
            npy_format.write_array_header_1_0(member, header)
            member.write(py2_pickle_of_int16_arrays(sketches))
            archive.writestr(f"{name}.npy", member.getvalue())
    loaded = load_sketchrnn_npz(path)
    for name, sketches in splits.items():
        for got, want in zip(loaded[name], sketches, strict=True):
            np.testing.assert_array_equal(got, want)


def test_bad_sketchrnn_npz(tmp_path):
    with pytest.raises(DataError, match="missing \\['test'\\]"):
        load_sketchrnn_npz(sketchrnn_npz(tmp_path / "a.npz", {"train": [], "valid": []}))
    bad_rows = {"train": [np.ones((3, 4))], "valid": [], "test": []}
    with pytest.raises(DataError, match="train\\[0\\] has shape"):
        load_sketchrnn_npz(sketchrnn_npz(tmp_path / "b.npz", bad_rows))
    (tmp_path / "c.npz").write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match="not a valid .npz"):
        load_sketchrnn_npz(tmp_path / "c.npz")
    with pytest.raises(DataError, match="does not exist"):
        load_sketchrnn_npz(tmp_path / "missing.npz")
    # equal-length sketches saved as one numeric (n, N, 3) array are accepted
    same = np.stack([random_sketch(5), random_sketch(5)])
    np.savez(tmp_path / "d.npz", train=same, valid=same, test=same)
    np.testing.assert_array_equal(load_sketchrnn_npz(tmp_path / "d.npz")["valid"][1], same[1])


# ---------------------------------------------------------------- ndjson

GOOD = {"word": "cat", "drawing": [[[0, 10, 20], [0, 5, 0]], [[3], [4]]]}


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_real_ndjson_files(shared_assets):
    full = shared_assets / "quickdraw_dataset" / "full"
    raw = load_ndjson(full / "raw" / "bird.ndjson")
    simplified = load_ndjson(full / "simplified" / "bird.ndjson")
    assert (len(raw.drawings), raw.skipped, len(simplified.drawings)) == (37, 0, 25)
    assert all(d["word"] == "bird" for d in raw.drawings + simplified.drawings)
    raw_sketches = load_ndjson_stroke3(full / "raw" / "bird.ndjson")
    assert len(raw_sketches) == 37
    points = [np.cumsum(s[:, :2], axis=0) for s in raw_sketches]
    # aligned at 0 and scaled to 255; like Google's files, resampling may cut an extreme corner
    assert all(0 <= p.min() <= 1 and 254 <= p.max() <= 255 for p in points)
    assert np.mean([p.min() == 0 and p.max() == 255 for p in points]) > 0.8
    # auto-detection: the raw file goes through the simplification, the simplified file not
    np.testing.assert_array_equal(
        raw_sketches[3], drawing_to_stroke3(raw.drawings[3]["drawing"], raw=True)
    )
    first = load_ndjson_stroke3(full / "simplified" / "bird.ndjson", limit=2)
    assert len(first) == 2
    np.testing.assert_array_equal(first[1], drawing_to_stroke3(simplified.drawings[1]["drawing"]))
    unsimplified = load_ndjson_stroke3(full / "raw" / "bird.ndjson", raw=False, limit=1)
    assert len(unsimplified[0]) == sum(len(s[0]) for s in raw.drawings[0]["drawing"])


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        ('{"word": "cat", "drawing": [[[0, 1', "not valid JSON"),
        ("[1, 2, 3]", "not an object"),
        ('{"word": "cat"}', "missing the 'drawing' key"),
        ('{"drawing": [[[0, 1, 2], [0, 1]]]}', "stroke 0"),
        ('{"drawing": [[[0, 1, 2]]]}', "shape"),
        ('{"drawing": [[[], []]]}', "shape"),
        ('{"drawing": []}', "non-empty list"),
        ('{"drawing": [[["a"], ["b"]]]}', "stroke 0"),
    ],
)
def test_bad_ndjson_lines(tmp_path, caplog, bad_line, reason):
    path = write_lines(tmp_path / "cat.ndjson", [json.dumps(GOOD), bad_line, json.dumps(GOOD)])
    with pytest.raises(DataError, match=f"cat.ndjson, line 2: .*{reason}"):
        load_ndjson(path)
    with pytest.raises(DataError, match="line 2"):
        load_ndjson_stroke3(path)
    with caplog.at_level(logging.WARNING, logger="sketchrl.data"):
        loaded = load_ndjson(path, skip_bad=True)
    assert (len(loaded.drawings), loaded.skipped) == (2, 1)
    assert "skipped 1 bad line" in caplog.text
    assert len(load_ndjson_stroke3(path, skip_bad=True)) == 2


def test_truncated_ndjson(tmp_path, shared_assets):
    text = (shared_assets / "quickdraw_dataset/full/simplified/owl.ndjson").read_text()
    path = tmp_path / "owl.ndjson"
    path.write_text(text[: len(text) // 2])  # cut in the middle of a line
    line = text[: len(text) // 2].count("\n") + 1
    with pytest.raises(DataError, match=f"owl.ndjson, line {line}: not valid JSON"):
        load_ndjson(path)
    assert load_ndjson(path, skip_bad=True).skipped == 1


def test_ndjson_edge_cases(tmp_path):
    no_word = {"drawing": GOOD["drawing"]}
    path = write_lines(tmp_path / "owl.ndjson", ["", json.dumps(no_word), "  "])
    assert load_ndjson(path).drawings[0]["word"] == "owl"  # blank lines ignored, word filled
    np.testing.assert_array_equal(
        load_ndjson_stroke3(path)[0], [[0, 0, 0], [10, 5, 0], [10, -5, 1], [-17, 4, 1]]
    )
    write_lines(tmp_path / "empty.ndjson", [])
    with pytest.raises(DataError, match="no drawing"):
        load_ndjson(tmp_path / "empty.ndjson")
    with pytest.raises(DataError, match="does not exist"):
        load_ndjson(tmp_path / "nope.ndjson")
    with pytest.raises(DataError, match="limit"):
        load_ndjson_stroke3(path, limit=0)


# ---------------------------------------------------------------- bitmaps


def test_real_bitmaps_and_bin(tmp_path, shared_assets):
    path = shared_assets / "quickdraw_dataset/full/numpy_bitmap/bird.npy"
    bitmaps = load_bitmaps(path)
    assert bitmaps.shape == (3000, 28, 28) and bitmaps.dtype == np.uint8
    flat = np.load(path)
    np.testing.assert_array_equal(bitmaps[7], flat[7].reshape(28, 28))
    assert bitmaps.max() == 255 and np.median(bitmaps) == 0  # 0 = paper, 255 = ink
    bitmaps[:10].tofile(tmp_path / "bird.bin")
    np.testing.assert_array_equal(load_bitmaps(tmp_path / "bird.bin"), bitmaps[:10])


def test_bad_bitmaps(tmp_path):
    (tmp_path / "short.bin").write_bytes(bytes(784 * 2 + 5))
    with pytest.raises(DataError, match="not a multiple of 784"):
        load_bitmaps(tmp_path / "short.bin")
    np.save(tmp_path / "float.npy", np.zeros((2, 784), np.float32))
    with pytest.raises(DataError, match="float32"):
        load_bitmaps(tmp_path / "float.npy")
    np.save(tmp_path / "shape.npy", np.zeros((2, 780), np.uint8))
    with pytest.raises(DataError, match="shape"):
        load_bitmaps(tmp_path / "shape.npy")
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(DataError, match="unknown bitmap file type"):
        load_bitmaps(tmp_path / "x.png")
    np.save(tmp_path / "cube.npy", np.zeros((3, 28, 28), np.uint8))
    assert load_bitmaps(tmp_path / "cube.npy").shape == (3, 28, 28)


# ---------------------------------------------------------------- samples and dispatch


def test_samples_round_trip(tmp_path):
    sketches = [random_sketch(5, np.float64) * 0.1, np.zeros((0, 3)), random_sketch(1) * 0.5]
    path = save_samples(tmp_path / "out" / "samples", sketches)
    assert path == tmp_path / "out" / "samples" and path.is_file()  # no suffix added
    with np.load(path) as archive:
        assert archive["strokes"].dtype == np.float32 and archive["strokes"].shape == (6, 3)
        assert archive["lengths"].dtype == np.int64 and archive["lengths"].tolist() == [5, 0, 1]
    loaded = load_samples(path)
    assert [len(s) for s in loaded] == [5, 0, 1]
    for got, want in zip(loaded, sketches, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert load_samples(save_samples(tmp_path / "none.npz", [])) == []


def test_bad_samples(tmp_path):
    np.savez(tmp_path / "sum.npz", strokes=np.zeros((4, 3), np.float32), lengths=np.array([2, 3]))
    with pytest.raises(DataError, match="add up to 5 rows but 'strokes' has 4"):
        load_samples(tmp_path / "sum.npz")
    np.savez(tmp_path / "key.npz", strokes=np.zeros((4, 3), np.float32))
    with pytest.raises(DataError, match="missing \\['lengths'\\]"):
        load_samples(tmp_path / "key.npz")
    np.savez(tmp_path / "neg.npz", strokes=np.zeros((1, 3)), lengths=np.array([2, -1]))
    with pytest.raises(DataError, match="non-negative"):
        load_samples(tmp_path / "neg.npz")


def test_load_sketches_dispatch(tmp_path, shared_assets):
    ndjson = shared_assets / "quickdraw_dataset/full/simplified/bird.ndjson"
    assert len(load_sketches(ndjson)) == 25
    samples = save_samples(tmp_path / "samples.npz", [random_sketch(3), random_sketch(8)])
    assert [len(s) for s in load_sketches(samples)] == [3, 8]
    splits = {"train": [random_sketch(2)], "valid": [random_sketch(3)] * 2, "test": []}
    npz = sketchrnn_npz(tmp_path / "cat.npz", splits)
    assert len(load_sketches(npz)) == 0
    assert len(load_sketches(npz, split="valid")) == 2
    with pytest.raises(ConfigError, match="unknown split"):
        load_sketches(npz, split="val")
    np.savez(tmp_path / "other.npz", foo=np.zeros(3))
    with pytest.raises(DataError, match="neither a samples file"):
        load_sketches(tmp_path / "other.npz")
    (tmp_path / "x.csv").write_text("1,2,3\n")
    with pytest.raises(DataError, match="cannot read sketches from a '.csv'"):
        load_sketches(tmp_path / "x.csv")


# ---------------------------------------------------------------- StrokeDataset


def test_stroke_dataset_pads_normalises_and_drops():
    sketches = [random_sketch(n) for n in (4, 10, 30, 6)]
    dataset = StrokeDataset(sketches, max_seq_len=10)
    assert len(dataset) == 3 and dataset.num_dropped == 1
    kept = [sketches[0], sketches[1], sketches[3]]
    expected_factor = np.std(np.concatenate([s[:, :2].ravel() for s in kept]).astype(float))
    assert dataset.scale_factor == pytest.approx(expected_factor, rel=1e-6)
    stroke5, length = dataset[0]
    assert stroke5.dtype == torch.float32 and stroke5.shape == (10, 5) and length == 4
    expected = stroke3_to_stroke5(kept[0] / np.array([expected_factor, expected_factor, 1]), 10)
    np.testing.assert_allclose(stroke5.numpy(), expected, rtol=1e-5)
    assert dataset[1][1] == 10 and dataset[1][0][:, 4].sum() == 0  # full length: no end row
    fixed = StrokeDataset(sketches, max_seq_len=50, scale_factor=2.0)
    assert fixed.num_dropped == 0 and fixed.scale_factor == 2.0
    np.testing.assert_allclose(fixed[2][0][:30, :2].numpy(), sketches[2][:, :2] / 2.0)
    batch, lengths = next(iter(DataLoader(fixed, batch_size=4)))
    assert batch.shape == (4, 50, 5) and lengths.tolist() == [4, 10, 30, 6]


def test_stroke_dataset_augmentation():
    sketches = [random_sketch(40) for _ in range(3)]
    sketches[0][:, 2] = 0
    sketches[0][-1, 2] = 1  # one long stroke: many droppable points
    plain = StrokeDataset(sketches, 64)
    torch.testing.assert_close(plain[0][0], plain[0][0])  # no augmentation: deterministic
    augmented = StrokeDataset(
        sketches, 64, random_scale_factor=0.15, augment_stroke_prob=0.5, seed=7
    )
    first, length = augmented[0]
    assert length < 40  # points were dropped
    assert not torch.allclose(augmented[0][0], first)  # new draws on each fetch
    again = StrokeDataset(sketches, 64, random_scale_factor=0.15, augment_stroke_prob=0.5, seed=7)
    torch.testing.assert_close(again[0][0], first)  # reproducible from the seed
    # total displacement changes only by the random x/y stretch
    ratio = first[:length, :2].sum(0) / plain[0][0][:40, :2].sum(0)
    assert torch.all((ratio > 0.84) & (ratio < 1.16))


def test_stroke_dataset_bad_arguments():
    with pytest.raises(DataError, match="raise max_seq_len"):
        StrokeDataset([random_sketch(20)], max_seq_len=5)
    with pytest.raises(ConfigError):
        StrokeDataset([random_sketch(2)], max_seq_len=0)
    with pytest.raises(ConfigError):
        StrokeDataset([random_sketch(2)], 5, augment_stroke_prob=1.5)
    with pytest.raises(DataError, match="sketch 1 has shape"):
        StrokeDataset([random_sketch(2), np.ones((3, 5))], 5)


def test_stroke_dataset_workers_draw_different_augmentations():
    sketch = random_sketch(12)
    sketch[0, 0] = 5  # a non-zero first offset to watch
    dataset = StrokeDataset([sketch] * 4, 16, scale_factor=1.0, random_scale_factor=0.3, seed=1)
    torch.manual_seed(0)
    loader = DataLoader(dataset, batch_size=2, num_workers=2)
    first, second = [batch[:, 0, 0] for batch, _ in loader]  # one batch per worker
    assert not torch.allclose(first, second)


def test_load_sketches_skip_bad_and_the_hint(tmp_path):
    path = write_lines(tmp_path / "cat.ndjson", [json.dumps(GOOD), "{oops", json.dumps(GOOD)])
    with pytest.raises(DataError, match=r"line 2: .*skip bad lines with --skip-bad"):
        load_sketches(path)
    assert len(load_sketches(path, skip_bad=True)) == 2


def test_importing_the_package_loads_no_numpy_or_torch():
    import subprocess
    import sys

    code = ("import sys, sketchrl.data, sketchrl.data.common\n"
            "from sketchrl.data import writable_directory\n"
            "print(sorted({'numpy', 'torch'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)
    assert result.stdout.strip() == "[]"
    import sketchrl.data as data

    assert sorted(data.__all__) == sorted(data._WHERE) and "StrokeDataset" in dir(data)
    with pytest.raises(AttributeError):
        data.no_such_name  # noqa: B018
