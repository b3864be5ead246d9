"""Stroke-3 and stroke-5 sketch formats, polylines, bounds and normalisation.

stroke-3: ``(N, 3)`` float32 rows ``(dx, dy, pen_lifted)``: the offset from the previous point
(the first row's offset is from the origin ``(0, 0)``) and ``pen_lifted = 1`` when the pen
lifts *after* this point.

stroke-5: ``(T, 5)`` float32 rows ``(dx, dy, p1, p2, p3)``: ``p1`` pen down after this point,
``p2`` pen lifted after this point, ``p3`` end of sketch; every row from the first ``p3`` row on
is ``[0, 0, 0, 0, 1]``.

These follow Magenta's ``sketch_rnn/utils.py`` (``to_big_strokes``, ``to_normal_strokes``,
``strokes_to_lines``, ``lines_to_strokes``), vectorised with numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sketchrl.errors import DataError

__all__ = [
    "as_stroke3",
    "bounding_box",
    "denormalize",
    "normalize",
    "polylines_to_stroke3",
    "scale_factor",
    "stroke3_to_polylines",
    "stroke3_to_stroke5",
    "stroke5_to_stroke3",
]


def as_stroke3(array: object, *, what: str = "sketch") -> np.ndarray:
    """Return ``array`` as a float32 ``(N, 3)`` stroke-3 array; DataError if it is not one.

    Any empty input (``[]``, ``np.zeros(0)``) is the empty sketch ``(0, 3)``.
    """
    try:
        s3 = np.asarray(array, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} is not a numeric array ({exc}); expected (N, 3) stroke-3") from exc
    if s3.ndim == 1 and s3.size == 0:
        return np.zeros((0, 3), dtype=np.float32)
    if s3.ndim != 2 or s3.shape[1] != 3:
        raise DataError(f"{what} has shape {s3.shape}; expected (N, 3) rows (dx, dy, pen_lifted)")
    if not np.isfinite(s3).all():
        raise DataError(f"{what} contains NaN or infinite values; expected finite stroke-3 rows")
    return s3


def stroke3_to_stroke5(s3: np.ndarray, max_len: int | None = None) -> np.ndarray:
    """Stroke-3 to stroke-5 padded with end rows (Magenta ``to_big_strokes``, no start token).

    The result has ``max_len`` rows (default ``len(s3) + 1``); row ``len(s3)`` and every row after
    it is the end row ``[0, 0, 0, 0, 1]``. ``max_len == len(s3)`` is allowed and has no end row.
    """
    s3 = np.asarray(s3, dtype=np.float32)
    n = len(s3)
    total = n + 1 if max_len is None else int(max_len)
    if n > total:
        raise ValueError(f"sketch has {n} rows, more than max_len={total}")
    s5 = np.zeros((total, 5), dtype=np.float32)
    s5[:n, 0:2] = s3[:, 0:2]
    s5[:n, 3] = s3[:, 2]
    s5[:n, 2] = 1.0 - s3[:, 2]
    s5[n:, 4] = 1.0
    return s5


def stroke5_to_stroke3(s5: np.ndarray) -> np.ndarray:
    """Stroke-5 to stroke-3: the rows before the first ``p3 > 0`` row (all rows if none).

    Like Magenta's ``to_normal_strokes``, except that a sequence whose first row is an end row
    gives an empty sketch (Magenta returns every row in that case).
    """
    s5 = np.asarray(s5, dtype=np.float32)
    if s5.ndim != 2 or s5.shape[1] != 5:
        raise ValueError(f"stroke-5 array has shape {s5.shape}; expected (T, 5)")
    ends = np.flatnonzero(s5[:, 4] > 0)
    n = int(ends[0]) if len(ends) else len(s5)
    s3 = np.empty((n, 3), dtype=np.float32)
    s3[:, 0:2] = s5[:n, 0:2]
    s3[:, 2] = s5[:n, 3]
    return s3


def stroke3_to_polylines(s3: np.ndarray) -> list[np.ndarray]:
    """Stroke-3 to polylines: a list of ``(k, 2)`` float64 arrays of absolute coordinates.

    The pen starts at the origin ``(0, 0)``; a polyline ends at each ``pen_lifted`` row. Trailing
    points after the last pen lift form a last polyline (Magenta's ``strokes_to_lines`` drops
    them).
    """
    s3 = np.asarray(s3)
    if len(s3) == 0:
        return []
    points = np.cumsum(s3[:, 0:2].astype(np.float64), axis=0)
    lifts = np.flatnonzero(s3[:, 2] > 0.5) + 1
    lines = np.split(points, lifts)
    return [line for line in lines if len(line)]


def polylines_to_stroke3(lines: Sequence[np.ndarray]) -> np.ndarray:
    """Polylines of absolute ``(k, 2)`` coordinates to stroke-3 (Magenta ``lines_to_strokes``).

    Offsets start from the origin ``(0, 0)``; the pen lifts after each polyline's last point.
    Empty polylines are skipped.
    """
    parts = [np.asarray(line, dtype=np.float64).reshape(-1, 2) for line in lines]
    parts = [part for part in parts if len(part)]
    if not parts:
        return np.zeros((0, 3), dtype=np.float32)
    points = np.concatenate(parts)
    s3 = np.zeros((len(points), 3), dtype=np.float32)
    s3[:, 0:2] = np.diff(points, axis=0, prepend=np.zeros((1, 2)))
    s3[np.cumsum([len(part) for part in parts]) - 1, 2] = 1.0
    return s3


def bounding_box(s3: np.ndarray) -> tuple[float, float, float, float]:
    """``(min_x, max_x, min_y, max_y)`` of the absolute points of a stroke-3 sketch.

    Only the sketch's points count (not the origin the first offset starts from, which
    Magenta's ``get_bounds`` includes); an empty sketch gives ``(0, 0, 0, 0)``.
    """
    s3 = np.asarray(s3)
    if len(s3) == 0:
        return (0.0, 0.0, 0.0, 0.0)
    points = np.cumsum(s3[:, 0:2].astype(np.float64), axis=0)
    low, high = points.min(axis=0), points.max(axis=0)
    return (float(low[0]), float(high[0]), float(low[1]), float(high[1]))


def scale_factor(sketches: Sequence[np.ndarray]) -> float:
    """Standard deviation of every ``dx`` and ``dy`` offset together (Magenta's normaliser)."""
    offsets = [np.asarray(s, dtype=np.float64)[:, 0:2].ravel() for s in sketches]
    values = np.concatenate(offsets) if offsets else np.zeros(0)
    if values.size == 0:
        raise DataError("cannot compute a scale factor: the sketches have no rows; load more data")
    factor = float(np.std(values))
    if not np.isfinite(factor) or factor <= 0.0:
        raise DataError(
            f"cannot normalise by scale factor {factor}: every offset is equal; check the data"
        )
    return factor


def _rescale(sketches, factor: float, *, divide: bool):
    if not factor > 0:
        raise ValueError(f"scale factor must be positive, got {factor}")

    def one(s3: np.ndarray) -> np.ndarray:
        out = np.array(s3, dtype=np.float32, copy=True)
        if divide:
            out[:, 0:2] /= np.float32(factor)
        else:
            out[:, 0:2] *= np.float32(factor)
        return out

    if isinstance(sketches, np.ndarray) and sketches.dtype != object:
        return one(sketches)
    return [one(s3) for s3 in sketches]


def normalize(sketches, factor: float):
    """Divide the ``dx, dy`` of each sketch by ``factor`` (pixels -> model units).

    Takes a list of stroke-3 arrays (returns a new list) or one array (returns an array); the
    inputs are not modified.
    """
    return _rescale(sketches, factor, divide=True)


def denormalize(sketches, factor: float):
    """Multiply the ``dx, dy`` of each sketch by ``factor`` (model units -> pixels)."""
    return _rescale(sketches, factor, divide=False)
