"""Two colours in one sketch: a given prefix and the model's continuation (completion).

Both parts are placed in the frame of the whole drawing (the same centring and scale as
:func:`sketchrl.render.render` gives the whole drawing), so a two-colour image is the plain
render of the whole drawing with its prefix strokes recoloured.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from sketchrl.render.backends import RASTERISERS
from sketchrl.render.geometry import PlacedSketch, check_stroke3, fit_transform, split_strokes
from sketchrl.render.options import RenderOptions
from sketchrl.render.svg import format_points

#: RGB in [0, 1] of the prefix (black) and of the continuation (red).
PREFIX_RGB = (0.0, 0.0, 0.0)
CONTINUATION_RGB = (0.84, 0.15, 0.16)
PREFIX_HEX, CONTINUATION_HEX = "#000000", "#d62728"


def split_at(sketch: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
    """``(prefix, continuation)`` stroke-3 parts whose points keep their places in ``sketch``.

    The continuation's first offset is made absolute; when the prefix ends with the pen down,
    the continuation starts at the prefix's last point so that the joining segment is drawn.
    """
    sketch = check_stroke3(sketch)
    start = min(max(int(start), 0), len(sketch))
    prefix, rest = sketch[:start], sketch[start:].copy()
    if start == 0 or len(rest) == 0:
        return prefix, rest
    last = prefix[:, :2].sum(axis=0)
    if prefix[-1, 2] < 0.5:  # pen down: the segment to the next point belongs to the continuation
        anchor = np.array([[last[0], last[1], 0.0]], dtype=np.float32)
        return prefix, np.concatenate([anchor, rest])
    rest[0, :2] += last
    return prefix, rest


def _place(strokes: list[np.ndarray], scale: float, offset: np.ndarray) -> PlacedSketch:
    placed = [stroke * scale + offset for stroke in strokes]
    if not placed:
        return PlacedSketch(strokes=[], segments=np.zeros((0, 2, 2)))
    segments = np.concatenate([
        np.stack([line[:-1], line[1:]], axis=1) if len(line) > 1 else line[:, None].repeat(2, 1)
        for line in placed
    ])
    return PlacedSketch(strokes=placed, segments=segments)


def place_parts(sketch: np.ndarray, start: int, size: int, margin: float
                ) -> tuple[PlacedSketch, PlacedSketch]:
    """Prefix and continuation of ``sketch`` placed in the whole drawing's frame."""
    whole = split_strokes(sketch)
    if not whole:
        blank = _place([], 1.0, np.zeros(2))
        return blank, blank
    scale, offset = fit_transform(whole, size, margin)
    prefix, rest = split_at(sketch, start)
    return (_place(split_strokes(prefix), scale, offset),
            _place(split_strokes(rest), scale, offset))


def render_two_colour(
    sketches: Sequence[np.ndarray],
    starts: Sequence[int],
    options: RenderOptions | None = None,
    *,
    colours: tuple[tuple[float, float, float], tuple[float, float, float]] = (
        PREFIX_RGB, CONTINUATION_RGB),
    backend: str = "agg",
) -> torch.Tensor:
    """RGB images ``(B, 3, H, W)`` in [0, 1] on white: rows before ``starts[b]`` in
    ``colours[0]``, the rest in ``colours[1]`` (drawn first, so the prefix stays on top)."""
    options = options or RenderOptions(size=256)
    parts = [place_parts(s, start, options.size, options.margin)
             for s, start in zip(sketches, starts, strict=True)]
    raster = RASTERISERS[backend]
    device = torch.device("cpu")
    prefix = raster([p for p, _ in parts], options.size, options.line_width, device)
    rest = raster([r for _, r in parts], options.size, options.line_width, device)
    images = torch.ones(len(parts), 3, options.size, options.size)
    for coverage, colour in ((rest, colours[1]), (prefix, colours[0])):
        ink = torch.tensor(colour, dtype=torch.float32).view(1, 3, 1, 1)
        coverage = coverage.unsqueeze(1)
        images = images * (1.0 - coverage) + ink * coverage
    return images


def two_colour_svg(sketch: np.ndarray, start: int, size: int = 256, line_width: float = 2.0,
                   margin: float = 0.1, colours: tuple[str, str] = (PREFIX_HEX, CONTINUATION_HEX)
                   ) -> str:
    """An SVG like :func:`sketchrl.render.sketch_to_svg` with the rows before ``start`` in
    ``colours[0]`` and the rest in ``colours[1]`` (one ``<g>`` each, the prefix last)."""
    prefix, rest = place_parts(sketch, start, size, margin)
    groups = ""
    parts = ((rest, colours[1], "continuation"), (prefix, colours[0], "prefix"))
    for placed, colour, part in parts:
        paths = "".join(f'    <path d="{format_points(stroke)}"/>\n' for stroke in placed.strokes)
        groups += (f'  <g class="{part}" fill="none" stroke="{colour}" '
                   f'stroke-width="{line_width:g}" stroke-linecap="round" '
                   f'stroke-linejoin="round">\n{paths}  </g>\n')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
            f'viewBox="0 0 {size} {size}">\n'
            f'  <rect width="{size}" height="{size}" fill="white"/>\n{groups}</svg>\n')
