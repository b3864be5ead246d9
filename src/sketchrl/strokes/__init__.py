"""Sketch stroke formats (stroke-3, stroke-5, polylines), simplification and augmentation.

numpy only. See :mod:`sketchrl.strokes.formats` for the formats' definitions.
"""

from sketchrl.strokes.augment import augment_strokes, random_scale
from sketchrl.strokes.formats import (
    as_stroke3,
    bounding_box,
    denormalize,
    normalize,
    polylines_to_stroke3,
    scale_factor,
    stroke3_to_polylines,
    stroke3_to_stroke5,
    stroke5_to_stroke3,
)
from sketchrl.strokes.quickdraw import (
    drawing_to_polylines,
    drawing_to_stroke3,
    is_raw_drawing,
    simplify_raw_drawing,
)
from sketchrl.strokes.simplify import rdp, resample_polyline, simplify_polylines

__all__ = [
    "as_stroke3",
    "augment_strokes",
    "bounding_box",
    "denormalize",
    "drawing_to_polylines",
    "drawing_to_stroke3",
    "is_raw_drawing",
    "normalize",
    "polylines_to_stroke3",
    "random_scale",
    "rdp",
    "resample_polyline",
    "scale_factor",
    "simplify_polylines",
    "simplify_raw_drawing",
    "stroke3_to_polylines",
    "stroke3_to_stroke5",
    "stroke5_to_stroke3",
]
