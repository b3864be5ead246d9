"""Per-sketch statistics of stroke-3 sketches: strokes, points and pen-down length.

A stroke ends at a row whose ``pen_lifted`` is 1 (or at the last row). The move to row ``i``
is drawn when the pen was down after row ``i - 1``; the first row (the offset from the origin)
is never drawn, as in Magenta's ``strokes_to_lines``. Lengths are in model units.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

STAT_NAMES = ("strokes_per_sketch", "points_per_sketch", "pen_down_length")


def per_sketch_statistics(sketches: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """``{name: (B,) array}`` for each of :data:`STAT_NAMES`, computed on all rows at once."""
    lengths = np.array([len(sketch) for sketch in sketches], dtype=np.int64)
    count = len(lengths)
    if lengths.sum() == 0:
        return {name: np.zeros(count) for name in STAT_NAMES}
    rows = np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1, 3) for s in sketches])
    owner = np.repeat(np.arange(count), lengths)
    first_row = np.zeros(len(rows), dtype=bool)
    first_row[np.cumsum(lengths)[lengths > 0] - lengths[lengths > 0]] = True
    last_row = np.roll(first_row, -1)  # the row before the next sketch's first row
    last_row[-1] = True
    pen_lifted = rows[:, 2] >= 0.5
    previous_pen_down = np.concatenate([[False], ~pen_lifted[:-1]])
    drawn = previous_pen_down & ~first_row
    segment = np.hypot(rows[:, 0], rows[:, 1]) * drawn
    stroke_ends = pen_lifted | last_row
    return {
        "strokes_per_sketch": np.bincount(owner, weights=stroke_ends, minlength=count),
        "points_per_sketch": lengths.astype(np.float64),
        "pen_down_length": np.bincount(owner, weights=segment, minlength=count),
    }


def sketch_statistics(sketches: Sequence[np.ndarray]) -> dict[str, float]:
    """``{<name>_mean, <name>_std}`` over the sketches for each of :data:`STAT_NAMES`."""
    if len(sketches) == 0:
        return {}
    result: dict[str, float] = {}
    for name, values in per_sketch_statistics(sketches).items():
        result[f"{name}_mean"] = float(values.mean())
        result[f"{name}_std"] = float(values.std())
    return result
