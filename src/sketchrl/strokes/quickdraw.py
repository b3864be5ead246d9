"""Quick, Draw! ndjson drawings to stroke-3, the way sketch-rnn's ``.npz`` data was made.

A ``drawing`` is a list of strokes, each ``[xs, ys]`` (simplified files: integer 0-255
coordinates, already RDP-simplified) or ``[xs, ys, ts]`` (raw files: screen pixels and
milliseconds). The raw pipeline repeats the official preprocessing (dataset README): align the
drawing to the top-left corner (minimum 0), scale it uniformly so the maximum is 255, resample
every stroke at 1-pixel spacing, simplify with RDP at epsilon 2.0, round to whole pixels.
Both then become stroke-3 with offsets from the origin and the pen lifted after each stroke's
last point.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sketchrl.strokes.formats import polylines_to_stroke3
from sketchrl.strokes.simplify import rdp, resample_polyline

__all__ = ["drawing_to_polylines", "drawing_to_stroke3", "is_raw_drawing", "simplify_raw_drawing"]

RAW_EPSILON = 2.0
RAW_SPACING = 1.0
SIMPLIFIED_SIZE = 255.0


def drawing_to_polylines(drawing: Sequence[Sequence[Sequence[float]]]) -> list[np.ndarray]:
    """The strokes of a drawing as ``(k, 2)`` float64 arrays (any ``t`` row is dropped)."""
    lines = []
    for stroke in drawing:
        xs, ys = stroke[0], stroke[1]
        if len(xs) != len(ys):
            raise ValueError(f"stroke has {len(xs)} x values but {len(ys)} y values")
        lines.append(np.column_stack([np.asarray(xs, np.float64), np.asarray(ys, np.float64)]))
    return lines


def is_raw_drawing(drawing: Sequence[Sequence[Sequence[float]]]) -> bool:
    """True when the strokes carry timestamps (``[xs, ys, ts]``), as raw files do."""
    return any(len(stroke) >= 3 for stroke in drawing)


def simplify_raw_drawing(lines: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Raw polylines -> simplified polylines (align, scale to 255, resample, RDP 2.0, round)."""
    lines = [np.asarray(line, np.float64).reshape(-1, 2) for line in lines]
    lines = [line for line in lines if len(line)]
    if not lines:
        return []
    every_point = np.concatenate(lines)
    origin = every_point.min(axis=0)
    extent = float((every_point - origin).max())
    scale = SIMPLIFIED_SIZE / extent if extent > 0 else 1.0
    simplified = []
    for line in lines:
        resampled = resample_polyline((line - origin) * scale, RAW_SPACING)
        simplified.append(np.round(rdp(resampled, RAW_EPSILON)))
    return simplified


def drawing_to_stroke3(
    drawing: Sequence[Sequence[Sequence[float]]], *, raw: bool = False
) -> np.ndarray:
    """A Quick, Draw! ``drawing`` to float32 stroke-3.

    ``raw=False``: the coordinates are used as they are (simplified files). ``raw=True``: the
    official simplification is applied first (see the module docstring).
    """
    lines = drawing_to_polylines(drawing)
    if raw:
        lines = simplify_raw_drawing(lines)
    return polylines_to_stroke3(lines)
