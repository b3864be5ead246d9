"""Rendering stroke-3 sketches to image tensors, SVG and PNG files (see ARCHITECTURE.md)."""

from sketchrl.render.backends import RASTERISERS
from sketchrl.render.export import export_sketches
from sketchrl.render.images import make_grid, save_grid, save_image, to_pil
from sketchrl.render.options import (
    CLIP_OPTIONS,
    INCEPTION_OPTIONS,
    PRESETS,
    QUICKDRAW_OPTIONS,
    SSIM_OPTIONS,
    RenderOptions,
)
from sketchrl.render.raster import render
from sketchrl.render.stats import ink_statistics
from sketchrl.render.svg import sketch_to_svg

__all__ = [
    "CLIP_OPTIONS",
    "INCEPTION_OPTIONS",
    "PRESETS",
    "QUICKDRAW_OPTIONS",
    "RASTERISERS",
    "SSIM_OPTIONS",
    "RenderOptions",
    "export_sketches",
    "ink_statistics",
    "make_grid",
    "render",
    "save_grid",
    "save_image",
    "sketch_to_svg",
    "to_pil",
]
