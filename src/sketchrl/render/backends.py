"""Rasterisers: placed strokes -> ink coverage images ``(B, H, W)`` float32 in [0, 1].

Two implementations of the same drawing model (round caps and joins, width in output pixels,
antialiased by the area of each pixel under the pen):

- ``agg`` (default; fastest and most exact on CPU): matplotlib's Agg rasteriser (anti-grain
  geometry, exact area coverage at sub-pixel precision), one C call per sketch that strokes all
  its pen-down strokes as one path. A Python loop over sketches around that call.
- ``torch``: a vectorised distance field; every pixel's distance to its nearest segment is
  turned into coverage. Fully batched tensor code, meant for a GPU; slowest on CPU.

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

#: Number of (pixel, segment) pairs the torch rasteriser evaluates at once.
TORCH_CHUNK_PAIRS = 1 << 22


def pad_segments(sketches: Sequence[PlacedSketch]) -> np.ndarray:
    """``(B, S, 2, 2)`` segments, shorter sketches padded with far-away degenerate segments."""
    count = max((len(placed.segments) for placed in sketches), default=0)
    padded = np.full((len(sketches), max(count, 1), 2, 2), -1e6, dtype=np.float32)
    for index, placed in enumerate(sketches):
        padded[index, : len(placed.segments)] = placed.segments
    return padded


def torch_coverage(
    sketches: Sequence[PlacedSketch], size: int, line_width: float, device: torch.device
) -> torch.Tensor:
    """Coverage ``(B, size, size)`` from the distance of each pixel centre to the nearest segment.

    Coverage is ``clamp(w / 2 + 0.5 - distance, 0, min(w, 1))``: a box-filter approximation of
    the area of the pixel inside the pen's path.
    """
    batch = len(sketches)
    segments = torch.from_numpy(pad_segments(sketches)).to(device)
    start = segments[:, :, 0]  # (B, S, 2)
    along = segments[:, :, 1] - start
    inverse_length2 = 1.0 / (along * along).sum(-1).clamp_min(1e-12)  # (B, S)
    centres = torch.arange(size, device=device, dtype=torch.float32) + 0.5
    pixel_y, pixel_x = torch.meshgrid(centres, centres, indexing="ij")
    pixel_x, pixel_y = pixel_x.reshape(1, -1, 1), pixel_y.reshape(1, -1, 1)  # (1, P, 1)
    nearest2 = torch.full((batch, size * size), math.inf, device=device)
    segment_count = segments.shape[1]
    per_sketch = size * size * segment_count
    sketch_chunk = max(1, TORCH_CHUNK_PAIRS // per_sketch)
    segment_chunk = max(1, min(segment_count, TORCH_CHUNK_PAIRS // (size * size)))
    for b0 in range(0, batch, sketch_chunk):
        rows = slice(b0, b0 + sketch_chunk)
        for s0 in range(0, segment_count, segment_chunk):
            cols = slice(s0, s0 + segment_chunk)
            ax, ay = start[rows, None, cols, 0], start[rows, None, cols, 1]
            vx, vy = along[rows, None, cols, 0], along[rows, None, cols, 1]
            dx, dy = pixel_x - ax, pixel_y - ay  # (b, P, s)
            t = ((dx * vx + dy * vy) * inverse_length2[rows, None, cols]).clamp_(0.0, 1.0)
            distance2 = (dx - t * vx).square_() + (dy - t * vy).square_()
            nearest2[rows] = torch.minimum(nearest2[rows], distance2.amin(dim=-1))
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
