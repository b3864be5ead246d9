"""Ink statistics of bitmaps, to compare renders with real Quick, Draw! ``numpy_bitmap`` data."""

from __future__ import annotations

import numpy as np
import torch


def _mean(values: list[float] | np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def ink_statistics(
    images: torch.Tensor | np.ndarray, ink_on_black: bool = True
) -> dict[str, float]:
    """Mean ink statistics of a batch of gray images ``(B, [1,] H, W)``.

    Values are in [0, 1] for float input or 0-255 for ``uint8`` input; they are first quantised
    to 8 bits like ``numpy_bitmap`` (a pixel has ink when its 8-bit ink value is above 0).

    Returns means over the batch of: ``mean_ink`` (ink per pixel), ``ink_fraction`` (fraction
    of pixels with ink), ``ink_value`` (mean ink of the inked pixels), ``bbox_side`` (longer
    side of the inked bounding box / image side), ``bbox_margin`` (smallest gap between that box
    and the border / side), ``centre_offset`` (distance of the box centre from the image centre
    / side) and ``spread`` (ink-weighted root-mean-square distance of pixel centres from the
    ink's centre of mass / side). Blank images count in the first two only.
    """
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    array = np.asarray(images)
    if array.dtype == np.uint8:
        ink8 = array.astype(np.int64)
    else:
        ink8 = np.rint(np.clip(array, 0.0, 1.0) * 255.0).astype(np.int64)
    if not ink_on_black:
        ink8 = 255 - ink8
    ink8 = ink8.reshape(len(ink8), *ink8.shape[-2:])
    size = ink8.shape[-1]
    inked = ink8 > 0
    drawn = inked.any(axis=(1, 2))
    ink_value, sides, margins, offsets, spreads = [], [], [], [], []
    centres = np.arange(size) + 0.5
    for ink, mask in zip(ink8[drawn], inked[drawn], strict=True):
        ink_value.append(ink[mask].mean() / 255.0)
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        low = np.array([cols[0], rows[0]])
        high = np.array([cols[-1], rows[-1]]) + 1
        sides.append((high - low).max() / size)
        margins.append(min(low.min(), size - high.max()) / size)
        offsets.append(np.linalg.norm((low + high) / 2 - size / 2) / size)
        weight_x, weight_y = ink.sum(axis=0) / ink.sum(), ink.sum(axis=1) / ink.sum()
        mean_x, mean_y = weight_x @ centres, weight_y @ centres
        variance = weight_x @ (centres - mean_x) ** 2 + weight_y @ (centres - mean_y) ** 2
        spreads.append(np.sqrt(variance) / size)
    return {
        "mean_ink": float(ink8.mean() / 255.0),
        "ink_fraction": float(inked.mean()),
        "ink_value": _mean(ink_value),
        "bbox_side": _mean(sides),
        "bbox_margin": _mean(margins),
        "centre_offset": _mean(offsets),
        "spread": _mean(spreads),
    }
