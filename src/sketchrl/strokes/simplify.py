"""Polyline simplification (Ramer-Douglas-Peucker) and resampling at a fixed spacing.

``rdp`` is written here (no dependency): an explicit stack instead of recursion, with the
distances of each segment's points computed in one numpy call. It keeps the same points as the
``rdp`` package that the Quick, Draw! simplification used: the distance is to the infinite line
through the segment's end points (to the start point when both ends coincide), the first
farthest point wins ties, and a point splits the segment only when its distance is strictly
greater than ``epsilon``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["rdp", "resample_polyline", "simplify_polylines"]


def _line_distances(points: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Distance of each point to the line through ``start`` and ``end``."""
    direction = end - start
    length = float(np.hypot(direction[0], direction[1]))
    if length == 0.0:
        return np.hypot(points[:, 0] - start[0], points[:, 1] - start[1])
    cross = direction[0] * (start[1] - points[:, 1]) - direction[1] * (start[0] - points[:, 0])
    return np.abs(cross) / length


def rdp(points: np.ndarray, epsilon: float) -> np.ndarray:
    """Ramer-Douglas-Peucker: the subset of ``points (k, 2)`` kept at tolerance ``epsilon``.

    The first and last points are always kept; the result keeps the input's order and dtype.
    """
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"rdp expects (k, 2) points, got shape {points.shape}")
    if epsilon < 0:
        raise ValueError(f"rdp epsilon must be >= 0, got {epsilon}")
    count = len(points)
    if count < 3:
        return points.copy()
    coords = points.astype(np.float64)
    keep = np.zeros(count, dtype=bool)
    keep[[0, -1]] = True
    stack = [(0, count - 1)]
    while stack:
        first, last = stack.pop()
        if last - first < 2:
            continue
        distances = _line_distances(coords[first + 1 : last], coords[first], coords[last])
        farthest = int(np.argmax(distances))
        if distances[farthest] > epsilon:
            split = first + 1 + farthest
            keep[split] = True
            stack.append((split, last))
            stack.append((first, split))
    return points[keep]


def simplify_polylines(lines: Sequence[np.ndarray], epsilon: float = 2.0) -> list[np.ndarray]:
    """Apply :func:`rdp` to each polyline."""
    return [rdp(np.asarray(line).reshape(-1, 2), epsilon) for line in lines]


def resample_polyline(points: np.ndarray, spacing: float = 1.0) -> np.ndarray:
    """Points every ``spacing`` units of arc length along a polyline, plus its last point.

    The samples run across vertices (a corner is not kept unless a sample falls on it). A
    polyline of zero length gives its first and last points (a dot stays a two-point stroke, as
    in the simplified Quick, Draw! files). Returns float64 ``(m, 2)``.
    """
    if spacing <= 0:
        raise ValueError(f"resampling spacing must be positive, got {spacing}")
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(points) < 2:
        return points.copy()
    steps = np.hypot(*np.diff(points, axis=0).T)
    moving = steps > 0
    if not moving.any():
        return points[[0, -1]].copy()
    points = points[np.concatenate([[True], moving])]
    arc = np.concatenate([[0.0], np.cumsum(steps[moving])])
    positions = np.arange(0.0, arc[-1], spacing)
    if arc[-1] - positions[-1] > 1e-9:
        positions = np.append(positions, arc[-1])
    else:
        positions[-1] = arc[-1]
    xs = np.interp(positions, arc, points[:, 0])
    ys = np.interp(positions, arc, points[:, 1])
    return np.column_stack([xs, ys])
