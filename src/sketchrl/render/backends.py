"""Rasterisers: placed strokes -> ink coverage images ``(B, H, W)`` float32 in [0, 1].

Two implementations of the same drawing model (round caps and joins, width in output pixels,
antialiased by the area of each pixel under the pen):

- ``agg`` (default; fastest and most exact on CPU): matplotlib's Agg rasteriser (anti-grain
  geometry, exact area coverage at sub-pixel precision), one C call per sketch that strokes all
  its pen-down strokes as one path. A Python loop over sketches around that call.
- ``torch``: a vectorised distance field; every pixel's distance to its nearest segment is
  turned into coverage. Fully batched tensor code (chunks of sketches with similar segment
  counts, no loop over sketches), meant for a GPU, where thousands of 28x28 sketches take a
  few chunks; slowest on CPU.

``benchmarks/bench_render.py`` measures them against a third candidate, Pillow's ImageDraw on a
supersampled canvas then a box downsample: slower than Agg (one C call per segment and point)
and less exact (Pillow truncates vertices to whole canvas pixels).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from sketchrl.render.geometry import PlacedSketch

Rasteriser = Callable[[Sequence[PlacedSketch], int, float, torch.device], torch.Tensor]

#: Number of (pixel, segment) pairs the torch rasteriser evaluates at once, per device type
#: (about 5 float32 temporaries of this many elements are alive at once).
TORCH_CHUNK_PAIRS = {"cpu": 1 << 22, "cuda": 1 << 26}
#: Coordinates of padding segments: far from every pixel.
FAR_AWAY = -1e6


def flat_segments(sketches: Sequence[PlacedSketch]) -> tuple[np.ndarray, np.ndarray]:
    """All segments ``(S, 2, 2)`` float32, sketch after sketch, and each sketch's count."""
    counts = np.array([len(placed.segments) for placed in sketches], dtype=np.int64)
    if counts.sum() == 0:
        return np.zeros((0, 2, 2), dtype=np.float32), counts
    flat = np.concatenate([placed.segments for placed in sketches if len(placed.segments)])
    return flat.astype(np.float32, copy=False), counts


def chunk_bounds(sorted_counts: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` over sketches sorted by segment count, each chunk's padded size
    ``(stop - start) * its largest count`` within ``budget`` (at least one sketch a chunk)."""
    bounds, start, total = [], 0, len(sorted_counts)
    while start < total:
        padded = np.arange(1, total - start + 1) * np.maximum(sorted_counts[start:], 1)
        stop = start + max(1, int(np.searchsorted(padded, budget, side="right")))
        bounds.append((start, stop))
        start = stop
    return bounds


def _nearest_squared(segments: torch.Tensor, pixel_x: torch.Tensor, pixel_y: torch.Tensor,
                     segment_chunk: int) -> torch.Tensor:
    """``(b, P)`` squared distance of each pixel centre to the nearest of ``(b, S, 2, 2)``."""
    start, along = segments[:, :, 0], segments[:, :, 1] - segments[:, :, 0]
    inverse_length2 = 1.0 / (along * along).sum(-1).clamp_min(1e-12)  # (b, S)
    nearest2 = torch.full((len(segments), pixel_x.shape[1]), math.inf, device=segments.device)
    for s0 in range(0, segments.shape[1], segment_chunk):
        cols = slice(s0, s0 + segment_chunk)
        ax, ay = start[:, None, cols, 0], start[:, None, cols, 1]
        vx, vy = along[:, None, cols, 0], along[:, None, cols, 1]
        dx, dy = pixel_x - ax, pixel_y - ay  # (b, P, s)
        t = ((dx * vx + dy * vy) * inverse_length2[:, None, cols]).clamp_(0.0, 1.0)
        distance2 = (dx - t * vx).square_() + (dy - t * vy).square_()
        nearest2 = torch.minimum(nearest2, distance2.amin(dim=-1))
    return nearest2


def torch_coverage(
    sketches: Sequence[PlacedSketch], size: int, line_width: float, device: torch.device
) -> torch.Tensor:
    """Coverage ``(B, size, size)`` from the distance of each pixel centre to the nearest segment.

    Coverage is ``clamp(w / 2 + 0.5 - distance, 0, min(w, 1))``: a box-filter approximation of
    the area of the pixel inside the pen's path. All segments go to ``device`` at once; sketches
    are processed in chunks of similar segment counts (little padding), as many per chunk as
    :data:`TORCH_CHUNK_PAIRS` allows: a few chunks for thousands of 28x28 sketches on a GPU.
    """
    batch, pixels = len(sketches), size * size
    flat, counts = flat_segments(sketches)
    if len(flat) == 0:
        return torch.zeros((batch, size, size), device=device)
    segments = torch.from_numpy(flat).to(device)
    offsets = torch.from_numpy(np.cumsum(counts) - counts).to(device)
    counts_on_device = torch.from_numpy(counts).to(device)
    order = np.argsort(counts, kind="stable")
    budget = TORCH_CHUNK_PAIRS.get(torch.device(device).type, TORCH_CHUNK_PAIRS["cpu"])
    centres = torch.arange(size, device=device, dtype=torch.float32) + 0.5
    pixel_y, pixel_x = torch.meshgrid(centres, centres, indexing="ij")
    pixel_x, pixel_y = pixel_x.reshape(1, -1, 1), pixel_y.reshape(1, -1, 1)  # (1, P, 1)
    nearest2 = torch.empty((batch, pixels), device=device)
    for start, stop in chunk_bounds(counts[order], max(1, budget // pixels)):
        rows = torch.from_numpy(order[start:stop]).to(device)
        width = max(1, int(counts[order[stop - 1]]))
        slot = torch.arange(width, device=device)
        index = (offsets[rows, None] + slot).clamp_(max=len(segments) - 1)  # (b, width)
        chunk = segments[index]  # (b, width, 2, 2)
        chunk[slot >= counts_on_device[rows, None]] = FAR_AWAY
        segment_chunk = max(1, min(width, budget // pixels))
        nearest2[rows] = _nearest_squared(chunk, pixel_x, pixel_y, segment_chunk)
    coverage = (line_width / 2.0 + 0.5 - nearest2.sqrt()).clamp_(0.0, min(line_width, 1.0))
    return coverage.reshape(batch, size, size)


def agg_path_vertices(placed: PlacedSketch, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (y flipped: Agg's origin is the bottom-left corner) and path codes of a sketch.

    A stroke of zero extent (a dot) becomes a 0.001 px segment: Agg draws no zero-length
    segment, but its round caps make a tiny one a disc.
    """
    from matplotlib.path import Path as AggPath

    vertices, codes = [], []
    for stroke in placed.strokes:
        if np.ptp(stroke, axis=0).max() == 0:
            stroke = np.stack([stroke[0], stroke[0] + (1e-3, 0.0)])
        vertices.append(stroke)
        codes.append(np.full(len(stroke), AggPath.LINETO, dtype=AggPath.code_type))
        codes[-1][0] = AggPath.MOVETO
    flat = np.concatenate(vertices)
    flat[:, 1] = size - flat[:, 1]
    return flat, np.concatenate(codes)


def agg_coverage(
    sketches: Sequence[PlacedSketch], size: int, line_width: float, device: torch.device
) -> torch.Tensor:
    """Coverage ``(B, size, size)``: a Python loop over sketches around matplotlib's C Agg."""
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.path import Path as AggPath
    from matplotlib.transforms import IdentityTransform

    images = np.zeros((len(sketches), size, size), dtype=np.float32)
    for index, placed in enumerate(sketches):
        if placed.is_blank:
            continue
        renderer = RendererAgg(size, size, 72)  # 72 dpi: a line width in points is in pixels
        pen = renderer.new_gc()
        pen.set_linewidth(line_width)
        pen.set_capstyle("round")
        pen.set_joinstyle("round")
        pen.set_antialiased(True)
        pen.set_snap(False)
        pen.set_foreground((0.0, 0.0, 0.0, 1.0))
        path = AggPath(*agg_path_vertices(placed, size))
        path.should_simplify = False  # keep every vertex
        renderer.draw_path(pen, path, IdentityTransform())
        images[index] = np.asarray(renderer.buffer_rgba())[..., 3] / np.float32(255.0)
    return torch.from_numpy(images).to(device)


RASTERISERS: dict[str, Rasteriser] = {
    "agg": agg_coverage,
    "torch": torch_coverage,
}
