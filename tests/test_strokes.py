"""Stroke formats, simplification, Quick, Draw! conversion and augmentation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sketchrl.errors import DataError
from sketchrl.strokes import (
    as_stroke3,
    augment_strokes,
    bounding_box,
    denormalize,
    drawing_to_polylines,
    drawing_to_stroke3,
    normalize,
    polylines_to_stroke3,
    random_scale,
    rdp,
    resample_polyline,
    scale_factor,
    simplify_polylines,
    stroke3_to_polylines,
    stroke3_to_stroke5,
    stroke5_to_stroke3,
)

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def stroke3s(draw, max_rows: int = 40, last_lifted: bool = False) -> np.ndarray:
    """Random stroke-3 sketches with integer-valued offsets (exact in float32)."""
    rows = draw(st.integers(0, max_rows))
    offsets = draw(arrays(np.int16, (rows, 2), elements=st.integers(-300, 300)))
    pens = draw(arrays(np.int8, (rows,), elements=st.integers(0, 1)))
    s3 = np.column_stack([offsets, pens]).astype(np.float32)
    if last_lifted and rows:
        s3[-1, 2] = 1.0
    return s3


S3_A = np.array([[1, 2, 0], [3, -4, 1], [-5, 6, 0], [7, 8, 1]], dtype=np.float32)


def test_stroke3_to_stroke5_matches_magenta_layout():
    s5 = stroke3_to_stroke5(S3_A, max_len=6)
    assert s5.shape == (6, 5) and s5.dtype == np.float32
    np.testing.assert_array_equal(s5[:4, :2], S3_A[:, :2])
    np.testing.assert_array_equal(s5[:4, 2:], [[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(s5[4:], [[0, 0, 0, 0, 1]] * 2)
    assert stroke3_to_stroke5(S3_A).shape == (5, 5)  # default: one end row
    assert stroke3_to_stroke5(S3_A, max_len=4)[:, 4].sum() == 0  # full length: no end row
    with pytest.raises(ValueError, match="more than max_len"):
        stroke3_to_stroke5(S3_A, max_len=3)


def test_stroke5_to_stroke3_stops_at_first_end_row():
    s5 = np.array(
        [[1, 1, 1, 0, 0], [2, 2, 0, 1, 0], [0, 0, 0, 0, 1], [9, 9, 1, 0, 0]], dtype=np.float32
    )
    np.testing.assert_array_equal(stroke5_to_stroke3(s5), [[1, 1, 0], [2, 2, 1]])
    assert stroke5_to_stroke3(s5[2:]).shape == (0, 3)  # starts with an end row: empty sketch
    assert len(stroke5_to_stroke3(s5[:2])) == 2  # no end row: every row


@SETTINGS
@given(stroke3s(), st.integers(0, 5))
def test_stroke3_stroke5_round_trip(s3, padding):
    s5 = stroke3_to_stroke5(s3, max_len=len(s3) + padding)
    assert s5.shape == (len(s3) + padding, 5)
    assert np.all(s5[:, 2:].sum(axis=1) == 1)  # exactly one pen state per row
    np.testing.assert_array_equal(stroke5_to_stroke3(s5), s3)


@SETTINGS
@given(stroke3s(last_lifted=True))
def test_stroke3_polylines_round_trip(s3):
    lines = stroke3_to_polylines(s3)
    assert len(lines) == int(s3[:, 2].sum())
    assert sum(len(line) for line in lines) == len(s3)
    np.testing.assert_array_equal(polylines_to_stroke3(lines), s3)


@SETTINGS
@given(
    st.lists(
        arrays(np.int16, st.tuples(st.integers(1, 8), st.just(2)), elements=st.integers(-500, 500)),
        max_size=6,
    )
)
def test_polylines_stroke3_round_trip(lines):
    back = stroke3_to_polylines(polylines_to_stroke3(lines))
    assert len(back) == len(lines)
    for got, want in zip(back, lines, strict=True):
        np.testing.assert_array_equal(got, want)


def test_polylines_are_absolute_and_keep_unterminated_points():
    lines = stroke3_to_polylines(S3_A[:3])  # the last row has the pen down
    assert [line.tolist() for line in lines] == [[[1, 2], [4, -2]], [[-1, 4]]]
    assert stroke3_to_polylines(np.zeros((0, 3))) == []
    assert polylines_to_stroke3([]).shape == (0, 3)


def test_bounding_box_covers_the_points_only():
    assert bounding_box(S3_A) == (-1.0, 6.0, -2.0, 12.0)
    assert bounding_box(np.array([[10, 20, 1]])) == (10.0, 10.0, 20.0, 20.0)
    assert bounding_box(np.zeros((0, 3))) == (0.0, 0.0, 0.0, 0.0)


def test_scale_factor_is_std_of_all_offsets():
    sketches = [S3_A, S3_A[:2] * 3]
    expected = np.std(np.concatenate([S3_A[:, :2].ravel(), (S3_A[:2, :2] * 3).ravel()]))
    assert scale_factor(sketches) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(DataError, match="no rows"):
        scale_factor([np.zeros((0, 3))])
    with pytest.raises(DataError, match="equal"):
        scale_factor([np.array([[2, 2, 0], [2, 2, 1]])])


@SETTINGS
@given(st.lists(stroke3s(max_rows=10), min_size=1, max_size=4), st.floats(0.1, 50.0))
def test_normalize_denormalize_round_trip(sketches, factor):
    before = [s.copy() for s in sketches]
    normal = normalize(sketches, factor)
    for got, original in zip(normal, sketches, strict=True):
        np.testing.assert_allclose(got[:, :2], original[:, :2] / factor, rtol=1e-6)
        np.testing.assert_array_equal(got[:, 2], original[:, 2])
    for got, original in zip(denormalize(normal, factor), sketches, strict=True):
        np.testing.assert_allclose(got, original, rtol=1e-5, atol=1e-4)
    for original, kept in zip(sketches, before, strict=True):  # inputs untouched
        np.testing.assert_array_equal(original, kept)


def test_normalize_single_array_and_bad_factor():
    assert isinstance(normalize(S3_A, 2.0), np.ndarray)
    np.testing.assert_array_equal(normalize(S3_A, 2.0)[:, :2], S3_A[:, :2] / 2)
    with pytest.raises(ValueError):
        normalize([S3_A], 0.0)


def test_as_stroke3_validates():
    assert as_stroke3([]).shape == (0, 3)
    assert as_stroke3(np.ones((2, 3), np.int16)).dtype == np.float32
    for bad in (np.ones((2, 5)), np.ones(3), [[1, 2, np.nan]], [["a", "b", "c"]]):
        with pytest.raises(DataError):
            as_stroke3(bad)


def reference_rdp(points: np.ndarray, epsilon: float) -> np.ndarray:
    """Recursive RDP as the ``rdp`` package writes it, point by point."""
    start, end = points[0], points[-1]
    best, index = 0.0, 0
    for i in range(1, len(points) - 1):
        if np.all(start == end):
            distance = np.linalg.norm(points[i] - start)
        else:
            d, p = end - start, start - points[i]
            distance = abs(d[0] * p[1] - d[1] * p[0]) / np.linalg.norm(d)
        if distance > best:
            best, index = distance, i
    if best > epsilon:
        left = reference_rdp(points[: index + 1], epsilon)
        return np.vstack([left[:-1], reference_rdp(points[index:], epsilon)])
    return np.vstack([start, end]) if len(points) > 1 else points


@SETTINGS
@given(
    arrays(np.int16, st.tuples(st.integers(2, 40), st.just(2)), elements=st.integers(0, 60)),
    st.sampled_from([0.0, 0.5, 2.0, 7.0]),
)
def test_rdp_matches_reference(points, epsilon):
    points = points.astype(np.float64)
    np.testing.assert_array_equal(rdp(points, epsilon), reference_rdp(points, epsilon))


def test_rdp_drops_collinear_points_and_keeps_corners():
    line = np.array([[0, 0], [1, 1], [2, 2], [3, 3]], dtype=float)
    np.testing.assert_array_equal(rdp(line, 0.1), [[0, 0], [3, 3]])
    corner = np.array([[0, 0], [5, 0], [10, 0], [10, 5], [10, 10]], dtype=float)
    np.testing.assert_array_equal(rdp(corner, 2.0), [[0, 0], [10, 0], [10, 10]])
    assert len(rdp(corner[:1], 2.0)) == 1
    assert [len(x) for x in simplify_polylines([line, corner])] == [2, 3]


def test_resample_polyline_spacing():
    line = np.array([[0, 0], [3, 4], [3, 7.5]])  # arc length 5 + 3.5
    out = resample_polyline(line, 1.0)
    steps = np.hypot(*np.diff(out, axis=0).T)
    assert len(out) == 10
    np.testing.assert_allclose(out[[0, -1]], line[[0, -1]])
    np.testing.assert_allclose(steps[:-1], 1.0, atol=1e-9)  # straight parts: exactly 1 apart
    assert steps[-1] == pytest.approx(0.5)
    np.testing.assert_array_equal(resample_polyline(np.array([[4, 4], [4, 4]])), [[4, 4], [4, 4]])


def test_simplified_drawing_to_stroke3():
    drawing = [[[10, 20, 30], [5, 5, 15]], [[0], [0]]]
    s3 = drawing_to_stroke3(drawing)
    np.testing.assert_array_equal(s3, [[10, 5, 0], [10, 0, 0], [10, 10, 1], [-30, -15, 1]])
    back = stroke3_to_polylines(s3)
    for got, want in zip(back, drawing_to_polylines(drawing), strict=True):
        np.testing.assert_array_equal(got, want)


def test_raw_drawing_is_aligned_scaled_and_simplified():
    xs = list(range(100, 301))  # a straight line of 201 points, then a short stroke
    drawing = [[xs, [50] * len(xs), list(range(len(xs)))], [[100, 110], [60, 70], [0, 5]]]
    lines = stroke3_to_polylines(drawing_to_stroke3(drawing, raw=True))
    points = np.concatenate(lines)
    assert points.min() == 0 and points.max() == 255  # aligned to 0, scaled to 255
    assert np.all(points == np.round(points))
    np.testing.assert_array_equal(lines[0], [[0, 0], [255, 0]])  # collinear points dropped
    np.testing.assert_array_equal(lines[1], [[0, 13], [13, 26]])  # (10, 20) * 255 / 200, rounded


def test_raw_conversion_reproduces_real_simplified_file(shared_assets):
    """The raw and simplified bird files share drawings (key_id): our pipeline vs Google's."""
    full = shared_assets / "quickdraw_dataset" / "full"

    def by_key(kind):
        lines = (full / kind / "bird.ndjson").read_text().splitlines()
        return {d["key_id"]: d["drawing"] for d in map(json.loads, lines)}

    raw, simplified = by_key("raw"), by_key("simplified")
    common = sorted(set(raw) & set(simplified))
    assert len(common) >= 20
    strokes = exact = 0
    for key in common:
        ours = stroke3_to_polylines(drawing_to_stroke3(raw[key], raw=True))
        theirs = stroke3_to_polylines(drawing_to_stroke3(simplified[key]))
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs, strict=True):
            strokes += 1
            exact += a.shape == b.shape and np.array_equal(a, b)
    assert exact / strokes >= 0.95, f"{exact}/{strokes} strokes identical"


def reference_augment(s3: np.ndarray, random: np.ndarray, prob: float) -> np.ndarray:
    """Magenta's augment_strokes loop, fed the given uniform numbers."""
    result, prev, count, stroke = [], [0, 0, 1], 0, [0, 0, 1]
    for i, row in enumerate(s3):
        candidate = [float(row[0]), float(row[1]), float(row[2])]
        count = 0 if candidate[2] == 1 or prev[2] == 1 else count + 1
        if candidate[2] == 0 and prev[2] == 0 and count > 2 and random[i] < prob:
            stroke[0] += candidate[0]
            stroke[1] += candidate[1]
        else:
            stroke = candidate
            prev = stroke
            result.append(stroke)
    return np.array(result, dtype=np.float32).reshape(-1, 3)


@SETTINGS
@given(stroke3s(max_rows=60), st.sampled_from([0.3, 0.7, 1.0]), st.integers(0, 2**16))
def test_augment_strokes_matches_magenta(s3, prob, seed):
    got = augment_strokes(s3, prob, np.random.default_rng(seed))
    expected = reference_augment(s3, np.random.default_rng(seed).random(len(s3)), prob)
    np.testing.assert_allclose(got, expected, atol=1e-3)
    if len(s3):
        np.testing.assert_allclose(got[:, :2].sum(0), s3[:, :2].sum(0), atol=1e-3)


def test_augment_strokes_drops_inner_points_only():
    s3 = np.array([[1, 0, 0]] * 10 + [[0, 1, 1]], dtype=np.float32)
    np.testing.assert_array_equal(augment_strokes(s3, 0.0), s3)
    dropped = augment_strokes(s3, 1.0, rng=0)
    assert len(dropped) == 4  # rows 0-2 are protected, 3-9 merge, the pen-lift row stays
    np.testing.assert_array_equal(dropped[-1], [0, 1, 1])
    np.testing.assert_array_equal(dropped[:, :2].sum(0), s3[:, :2].sum(0))


def test_random_scale():
    scaled = random_scale(S3_A, 0.2, np.random.default_rng(3))
    ratio = scaled[:, :2] / S3_A[:, :2]
    assert np.allclose(ratio, ratio[0]) and np.all((ratio >= 0.8) & (ratio <= 1.2))
    assert not np.allclose(ratio[0], 1.0)
    np.testing.assert_array_equal(scaled[:, 2], S3_A[:, 2])
    np.testing.assert_array_equal(scaled, random_scale(S3_A, 0.2, np.random.default_rng(3)))
    np.testing.assert_array_equal(random_scale(S3_A, 0.0), S3_A)
