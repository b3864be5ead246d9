"""From a stroke-3 array to pen-down strokes placed on a square canvas.

stroke-3 rows are ``(dx, dy, pen_lifted)``: point ``i`` is the running sum of the offsets of
rows ``0..i`` (the origin itself is not a point), and the segment from point ``i`` to point
``i + 1`` is drawn only when ``pen_lifted`` of row ``i`` is 0. A pen-down stroke is a maximal run
of joined points; a stroke of one point is a dot. A sketch without any drawn segment is blank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sketchrl.strokes import as_stroke3, stroke3_to_polylines


@dataclass(frozen=True)
class PlacedSketch:
    """A sketch's strokes in canvas pixel coordinates (x right, y down, origin top-left corner).

    ``strokes`` are ``(k, 2)`` float64 arrays, ``k >= 2`` for lines and ``k == 1`` for dots.
    ``segments`` is ``(S, 2, 2)``: every drawn segment, dots as zero-length segments.
    """

    strokes: list[np.ndarray]
    segments: np.ndarray

    @property
    def is_blank(self) -> bool:
        return len(self.strokes) == 0


def check_stroke3(sketch: np.ndarray, index: int | None = None) -> np.ndarray:
    """Return ``sketch`` as a float32 ``(N, 3)`` array (any empty array is ``(0, 3)``).

    Raises DataError naming the sketch when it is not stroke-3 or holds NaN / infinity.
    """
    if np.size(sketch) == 0:
        return np.zeros((0, 3), dtype=np.float32)
    return as_stroke3(sketch, what="sketch" if index is None else f"sketch {index}")


def split_strokes(sketch: np.ndarray) -> list[np.ndarray]:
    """Pen-down strokes of a stroke-3 sketch as absolute ``(k, 2)`` point arrays, dots included.

    Returns an empty list when no segment is drawn (empty sketch or only pen-up moves).
    """
    strokes = stroke3_to_polylines(check_stroke3(sketch))
    if all(len(stroke) < 2 for stroke in strokes):
        return []
    return strokes


def fit_transform(
    strokes: Sequence[np.ndarray], size: float, margin: float
) -> tuple[float, np.ndarray]:
    """Scale and offset that centre the strokes' bounding box on a ``size`` canvas.

    The longer side of the box spans ``size * (1 - 2 * margin)``; the aspect ratio is kept. A
    box of zero extent (all points equal) is centred at scale 1.
    """
    points = np.concatenate(list(strokes), axis=0)
    return fit_box(points.min(axis=0), points.max(axis=0), size, margin)


def fit_box(low: np.ndarray, high: np.ndarray, size: float,
            margin: float) -> tuple[float, np.ndarray]:
    """:func:`fit_transform` of the box ``low``..``high`` (sketch coordinates)."""
    extent = float((high - low).max())
    scale = size * (1.0 - 2.0 * margin) / extent if extent > 0 else 1.0
    offset = size / 2.0 - scale * (low + high) / 2.0
    return scale, offset


Frame = tuple[np.ndarray, np.ndarray]


def sketch_frame(sketch: np.ndarray) -> Frame | None:
    """The bounding box ``(low, high)`` a render frames ``sketch`` by (None when blank): pass it
    as the ``frame`` of another sketch (e.g. a prefix) to draw it in this sketch's frame."""
    strokes = split_strokes(sketch)
    if not strokes:
        return None
    points = np.concatenate(strokes, axis=0)
    return points.min(axis=0), points.max(axis=0)


def place_sketch(sketch: np.ndarray, size: float, margin: float,
                 frame: Frame | None = None) -> PlacedSketch:
    """Pen-down strokes of ``sketch`` centred and scaled to fit a ``size`` x ``size`` canvas
    (or placed as ``frame``, a box in sketch coordinates, would be)."""
    strokes = split_strokes(sketch)
    if not strokes:
        return PlacedSketch(strokes=[], segments=np.zeros((0, 2, 2)))
    if frame is None:
        scale, offset = fit_transform(strokes, size, margin)
    else:
        scale, offset = fit_box(np.asarray(frame[0]), np.asarray(frame[1]), size, margin)
    placed = [stroke * scale + offset for stroke in strokes]
    segments = np.concatenate(
        [
            np.stack([line[:-1], line[1:]], axis=1) if len(line) > 1 else line[:, None].repeat(2, 1)
            for line in placed
        ],
        axis=0,
    )
    return PlacedSketch(strokes=placed, segments=segments)
