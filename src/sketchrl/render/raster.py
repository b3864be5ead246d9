"""Batched rendering of stroke-3 sketches to image tensors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from sketchrl.errors import ConfigError
from sketchrl.render.backends import RASTERISERS
from sketchrl.render.geometry import Frame, check_stroke3, place_sketch
from sketchrl.render.options import RenderOptions


def render(
    sketches: Sequence[np.ndarray],
    options: RenderOptions | None = None,
    *,
    backend: str = "agg",
    device: str | torch.device | None = None,
    frames: Sequence[Frame | None] | None = None,
) -> torch.Tensor:
    """Render stroke-3 sketches to a ``(B, C, H, W)`` float32 tensor in [0, 1].

    Each sketch is centred and scaled to fit (aspect ratio kept, ``options.margin`` on each
    side), drawn with a round pen ``options.line_width`` output pixels wide, antialiased. The
    pen lifts after every row whose ``pen_lifted`` is 1: no line joins it to the next point. A
    pen-down stroke of a single point leaves a dot; a sketch with no drawn segment (empty, or
    only pen-up moves) is blank paper. Default: black ink (0) on white paper (1);
    ``options.ink_on_black`` flips it. RGB repeats the gray image on 3 channels.

    Args:
        sketches: stroke-3 arrays ``(N_i, 3)`` of any lengths (model units or pixels).
        options: size, channels, line width, margin, colours; default ``RenderOptions()``
            (224x224 gray, as ``SSIM_OPTIONS``).
        backend: rasteriser name in ``RASTERISERS`` (see :mod:`sketchrl.render.backends`):
            ``"agg"`` (default: fastest and exact on CPU; a Python loop over sketches around
            matplotlib's C Agg rasteriser) or ``"torch"`` (a vectorised distance field, for
            GPUs).
        device: where the result lives (and where the ``torch`` backend computes); default CPU.
        frames: per sketch, None (framed on its own) or a box from
            :func:`~sketchrl.render.geometry.sketch_frame` to frame it by instead (so that a
            partial sketch is drawn where it lies in the finished one).
    """
    options = options or RenderOptions()
    if backend not in RASTERISERS:
        raise ConfigError(
            f"unknown render backend {backend!r}; valid backends: {', '.join(sorted(RASTERISERS))}"
        )
    target = torch.device(device) if device is not None else torch.device("cpu")
    if frames is not None and len(frames) != len(sketches):
        raise ValueError(f"{len(frames)} frames for {len(sketches)} sketches")
    placed = [
        place_sketch(check_stroke3(sketch, index), options.size, options.margin,
                     None if frames is None else frames[index])
        for index, sketch in enumerate(sketches)
    ]
    coverage = RASTERISERS[backend](placed, options.size, options.line_width, target)
    images = coverage if options.ink_on_black else 1.0 - coverage
    images = images.to(dtype=torch.float32).unsqueeze(1)
    if options.channels > 1:
        images = images.repeat(1, options.channels, 1, 1)
    return images.contiguous()
