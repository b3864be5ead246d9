"""Saving rendered image tensors as PNG files (Pillow)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_pil(image: torch.Tensor) -> Image.Image:
    """A ``(C, H, W)`` or ``(H, W)`` tensor in [0, 1] (C = 1 or 3) as an 8-bit Pillow image."""
    if image.dim() == 2:
        image = image.unsqueeze(0)
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected an image (C, H, W) with C = 1 or 3, got {tuple(image.shape)}")
    pixels = (image.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    if pixels.shape[0] == 1:
        return Image.fromarray(pixels[0])
    return Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)))


def save_image(image: torch.Tensor, path: str | Path) -> Path:
    """Write one image ``(C, H, W)`` or ``(H, W)`` in [0, 1] as a PNG; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    to_pil(image).save(path, format="PNG")
    return path


def make_grid(
    images: torch.Tensor, ncol: int | None = None, padding: int = 2, pad_value: float = 0.5
) -> torch.Tensor:
    """Tile ``(B, C, H, W)`` images row by row into one ``(C, H', W')`` image.

    ``ncol`` defaults to ``ceil(sqrt(B))``; cells are separated (and framed) by ``padding``
    pixels of ``pad_value`` (mid-gray, visible on white and on black paper).
    """
    if images.dim() != 4 or images.shape[0] == 0:
        raise ValueError(f"expected a non-empty batch (B, C, H, W), got {tuple(images.shape)}")
    count, channels, height, width = images.shape
    ncol = max(1, min(ncol or math.ceil(math.sqrt(count)), count))
    nrow = math.ceil(count / ncol)
    grid = torch.full(
        (channels, padding + nrow * (height + padding), padding + ncol * (width + padding)),
        pad_value,
        dtype=torch.float32,
    )
    for index, image in enumerate(images.detach().float().cpu()):
        top = padding + (index // ncol) * (height + padding)
        left = padding + (index % ncol) * (width + padding)
        grid[:, top : top + height, left : left + width] = image
    return grid


def save_grid(
    images: torch.Tensor, path: str | Path, ncol: int | None = None, padding: int = 2
) -> Path:
    """Write a batch ``(B, C, H, W)`` in [0, 1] as one PNG grid (see :func:`make_grid`)."""
    return save_image(make_grid(images, ncol=ncol, padding=padding), path)
