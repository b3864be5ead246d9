"""Writing a collection of sketches to a folder: one PNG and one SVG per sketch, plus a grid."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sketchrl.errors import DataError
from sketchrl.render.images import save_grid, save_image
from sketchrl.render.options import RenderOptions
from sketchrl.render.raster import render
from sketchrl.render.svg import sketch_to_svg

logger = logging.getLogger(__name__)

#: Sketches rendered per call to :func:`render` while exporting.
EXPORT_BATCH = 32


def export_sketches(
    sketches: Sequence[np.ndarray],
    out_dir: str | Path,
    options: RenderOptions | None = None,
    *,
    grid_count: int = 64,
    progress: bool = True,
) -> list[Path]:
    """Write ``NNNN.png`` and ``NNNN.svg`` for every sketch and ``grid.png`` of the first ones.

    ``out_dir`` is created when missing; an existing folder is kept and same-named files in it
    are overwritten (nothing else is touched). Numbers start at 0000 and have at least 4 digits.
    The SVGs use the same size, line width and margin as the PNGs (always black on white).
    ``grid_count`` caps the number of sketches in ``grid.png``. Returns the PNG paths.
    """
    options = options or RenderOptions(size=256)
    if not sketches:
        raise DataError("no sketch to render; check the input file (or --limit / --split)")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir} exists and is not a folder; choose another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    digits = max(4, len(str(len(sketches) - 1)))
    paths: list[Path] = []
    grid_images = []
    bar = tqdm(total=len(sketches), desc="render", unit="sketch", disable=not progress)
    for start in range(0, len(sketches), EXPORT_BATCH):
        batch = sketches[start : start + EXPORT_BATCH]
        images = render(batch, options)
        for offset, (sketch, image) in enumerate(zip(batch, images, strict=True)):
            stem = out_dir / f"{start + offset:0{digits}d}"
            paths.append(save_image(image, stem.with_suffix(".png")))
            svg = sketch_to_svg(sketch, options.size, options.line_width, options.margin)
            stem.with_suffix(".svg").write_text(svg, encoding="utf-8")
        if start < grid_count:
            grid_images.append(images[: grid_count - start])
        bar.update(len(batch))
    bar.close()
    if grid_images:
        save_grid(torch.cat(grid_images)[:grid_count], out_dir / "grid.png")
    logger.info("wrote %d sketches to %s", len(paths), out_dir)
    return paths
