"""Speed and accuracy of sketch rasterisers: prints figures (no assertions).

    python benchmarks/bench_render.py [--count 160] [--rows 200] [--ndjson PATH] [--sizes 224,28]

Candidates: sketchrl's ``agg`` (matplotlib's C Agg, the default) and ``torch`` (vectorised
distance field) backends, and ``pillow``, defined here: Pillow's ImageDraw on a supersampled
canvas (polygons for segments, discs for round joins) then a box downsample (``Image.reduce``).
Sketches are random-walk stroke-3 drawings of ``--rows`` rows in ``--strokes`` pen-down strokes
(like sampled SketchRNN sketches, which have up to 250 rows), or the drawings of an ndjson file.
"width error" is the mean |ink / exact area - 1| of 24 single straight lines at random angles.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from sketchrl.render import RenderOptions, render
from sketchrl.render.geometry import PlacedSketch, place_sketch

Renderer = Callable[[Sequence[np.ndarray], RenderOptions], torch.Tensor]


def pillow_coverage_one(placed: PlacedSketch, size: int, line_width: float) -> np.ndarray:
    """Coverage of one sketch drawn with Pillow on a supersampled canvas, box-downsampled."""
    if placed.is_blank:
        return np.zeros((size, size), dtype=np.float32)
    factor = max(4, math.ceil(256 / size), math.ceil(6 / line_width))
    canvas = Image.new("L", (size * factor, size * factor), 0)
    draw = ImageDraw.Draw(canvas)
    # Pillow truncates vertices and fills inclusively (integers at pixel centres): unshifted
    # coordinates make that a rounding, and half a canvas pixel less on each side cancels the
    # inclusive fill on average.
    half_width = max(line_width * factor / 2.0 - 0.5, 0.0)
    segments = placed.segments * factor
    starts, ends = segments[:, 0], segments[:, 1]
    direction = ends - starts
    length = np.linalg.norm(direction, axis=1, keepdims=True)
    normal = np.stack([-direction[:, 1], direction[:, 0]], axis=1)
    normal *= half_width / np.where(length > 0, length, 1.0)
    quads = np.stack([starts + normal, ends + normal, ends - normal, starts - normal], axis=1)
    for quad in quads[length[:, 0] > 0].reshape(-1, 8).tolist():
        draw.polygon(quad, fill=255)
    points = np.concatenate([starts, [line[-1] * factor for line in placed.strokes]])
    for x, y in np.unique(points, axis=0).tolist():
        draw.ellipse((x - half_width, y - half_width, x + half_width, y + half_width), fill=255)
    return np.asarray(canvas.reduce(factor), dtype=np.float32) / 255.0


def render_pillow(sketches: Sequence[np.ndarray], options: RenderOptions) -> torch.Tensor:
    """Black-on-white ``(B, 1, H, W)`` like ``render``: a Python loop around Pillow's C calls."""
    coverage = [
        pillow_coverage_one(
            place_sketch(sketch, options.size, options.margin), options.size, options.line_width
        )
        for sketch in sketches
    ]
    return 1.0 - torch.from_numpy(np.stack(coverage)).unsqueeze(1)


CANDIDATES: dict[str, Renderer] = {
    "agg": lambda sketches, options: render(sketches, options, backend="agg"),
    "pillow": render_pillow,
    "torch": lambda sketches, options: render(sketches, options, backend="torch"),
}


def random_sketches(count: int, rows: int, strokes: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth random-walk sketches with ``strokes`` pen lifts spread over ``rows`` rows."""
    generator = np.random.default_rng(seed)
    sketches = []
    for _ in range(count):
        angle = np.cumsum(generator.normal(0.0, 0.3, rows))
        steps = generator.uniform(2.0, 8.0, rows)
        sketch = np.zeros((rows, 3), dtype=np.float32)
        sketch[:, 0], sketch[:, 1] = steps * np.cos(angle), steps * np.sin(angle)
        sketch[generator.choice(rows - 1, strokes - 1, replace=False), 2] = 1.0
        sketch[-1, 2] = 1.0
        sketches.append(sketch)
    return sketches


def ndjson_sketches(path: Path, count: int) -> list[np.ndarray]:
    """The drawings of a Quick, Draw! ndjson file as stroke-3, cycled to ``count`` sketches."""
    from sketchrl.data import load_ndjson_stroke3

    sketches = load_ndjson_stroke3(path)
    return [sketches[index % len(sketches)] for index in range(count)]


def sketches_per_second(renderer: Renderer, sketches: list[np.ndarray], options: RenderOptions):
    renderer(sketches[:2], options)  # warm-up (imports, allocations)
    start = time.perf_counter()
    renderer(sketches, options)
    return len(sketches) / (time.perf_counter() - start)


def width_error(renderer: Renderer, options: RenderOptions, lines: int = 24) -> float:
    """Mean relative error of the ink of single straight lines against their exact area."""
    errors = []
    for angle in np.linspace(0.0, np.pi, lines, endpoint=False) + 0.05:
        sketch = np.array([[0, 0, 0], [np.cos(angle), np.sin(angle), 1]], dtype=np.float32)
        ink = (1.0 - renderer([sketch], options)).sum().item()
        length = (
            options.size * (1 - 2 * options.margin) / max(abs(np.cos(angle)), abs(np.sin(angle)))
        )
        width = options.line_width
        errors.append(abs(ink / (length * width + np.pi * width**2 / 4) - 1))
    return float(np.mean(errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=160, help="sketches per timed batch")
    parser.add_argument("--torch-count", type=int, default=32, help="batch for the torch backend")
    parser.add_argument("--rows", type=int, default=200, help="stroke-3 rows per random sketch")
    parser.add_argument("--strokes", type=int, default=8, help="pen-down strokes per sketch")
    parser.add_argument("--ndjson", type=Path, help="time real Quick, Draw! drawings instead")
    parser.add_argument("--sizes", default="224,28,299", help="comma-separated image sizes")
    args = parser.parse_args()
    if args.ndjson:
        sketches = ndjson_sketches(args.ndjson, args.count)
        source = f"{args.ndjson.name} ({np.mean([len(s) for s in sketches]):.0f} rows on average)"
    else:
        sketches = random_sketches(args.count, args.rows, args.strokes)
        source = f"random walks ({args.rows} rows, {args.strokes} strokes)"
    print(f"{source}; torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    header = ("size", "width", "backend", "batch", "sketches/s", "width error")
    print(" ".join(f"{text:>{len(text) if len(text) > 6 else 6}}" for text in header))
    for size in (int(text) for text in args.sizes.split(",")):
        options = RenderOptions(size=size, line_width=1.5 if size < 64 else size / 112)
        for name, renderer in CANDIDATES.items():
            batch = sketches[: args.torch_count] if name == "torch" else sketches
            rate = sketches_per_second(renderer, batch, options)
            error = width_error(renderer, options)
            print(
                f"{size:>6} {options.line_width:>6.2f} {name:>7} {len(batch):>6} {rate:>10.1f} "
                f"{100 * error:>10.1f}%"
            )


if __name__ == "__main__":
    main()
