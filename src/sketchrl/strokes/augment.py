"""Data augmentation of stroke-3 sketches (Magenta's ``augment_strokes`` and ``random_scale``)."""

from __future__ import annotations

import numpy as np

__all__ = ["augment_strokes", "random_scale"]


def _generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def augment_strokes(
    s3: np.ndarray, prob: float, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """Randomly drop points inside strokes, like Magenta's ``augment_strokes``.

    A row is a drop candidate when it and the row before it have the pen down and it is at least
    the fourth point of its stroke; each candidate is dropped with probability ``prob``.
    A dropped row's offset is merged into the last kept row, so every kept point after it, the
    pen lifts and the total displacement are unchanged. Returns a new float32 array.
    """
    s3 = np.asarray(s3, dtype=np.float32)
    count = len(s3)
    if prob <= 0.0 or count == 0:
        return s3.copy()
    pen = s3[:, 2] > 0.5
    previous_lifted = np.concatenate([[True], pen[:-1]])
    restart = pen | previous_lifted
    # Rows since the last restart (0 at a restart), as Magenta's running ``count``.
    row = np.arange(count)
    since_restart = row - np.maximum.accumulate(np.where(restart, row, 0))
    candidate = ~restart & (since_restart > 2)
    drop = candidate & (_generator(rng).random(count) < prob)
    kept = np.flatnonzero(~drop)
    # A kept row absorbs the dropped rows after it: it now ends where the last of them ended.
    group_last = np.append(kept[1:] - 1, count - 1)
    positions = np.cumsum(s3[:, 0:2].astype(np.float64), axis=0)[group_last]
    out = np.empty((len(kept), 3), dtype=np.float32)
    out[:, 0:2] = np.diff(positions, axis=0, prepend=np.zeros((1, 2)))
    out[:, 2] = s3[kept, 2]
    return out


def random_scale(
    s3: np.ndarray, factor: float, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """Stretch x and y by independent random factors in ``[1 - factor, 1 + factor]``."""
    s3 = np.array(s3, dtype=np.float32, copy=True)
    if factor == 0.0:
        return s3
    scales = (_generator(rng).random(2) - 0.5) * 2.0 * factor + 1.0
    s3[:, 0:2] *= scales.astype(np.float32)
    return s3
