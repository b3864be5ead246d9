"""SSIM reward: structural similarity of the final render to one fixed target image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from sketchrl.devices import resolve_device
from sketchrl.errors import ConfigError, DataError
from sketchrl.render import SSIM_OPTIONS, RenderOptions, render
from sketchrl.rewards.base import Reward

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
#: Wang et al. (2004): an 11x11 Gaussian window with sigma 1.5.
WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5


def load_target_image(
    target: str | Path, target_index: int = 0, options: RenderOptions = SSIM_OPTIONS
) -> torch.Tensor:
    """The target as a ``(1, C, size, size)`` image in [0, 1] drawn like ``options``.

    ``target`` is an image file (converted to gray; transparent pixels count as paper; the
    longer side is fitted to ``size`` and the rest padded with paper, so the drawing keeps its
    aspect ratio; it must use the same polarity as the renders: black ink on white by default),
    or drawings (an ndjson / samples ``.npz`` file, or an asset name such as
    ``quickdraw:bird/simplified``) of which the ``target_index``-th is rendered with ``options``.
    """
    text = str(target)
    path = Path(text).expanduser()
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _load_image_file(path, options)
    if not path.exists():
        if ":" not in text:
            raise DataError(
                f"SSIM target {text!r} not found; give an image file, an ndjson file or an "
                "asset name like quickdraw:bird/simplified"
            )
        from sketchrl.assets import resolve

        path = resolve(text)
    from sketchrl.data import load_sketches

    sketches = load_sketches(path)
    if not 0 <= target_index < len(sketches):
        raise ConfigError(
            f"target_index={target_index} is out of range: {text} holds {len(sketches)} "
            f"drawings (use 0..{len(sketches) - 1})"
        )
    return render([sketches[target_index]], options)


def _load_image_file(path: Path, options: RenderOptions) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DataError(f"SSIM target image not found: {path}")
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGBA")
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{path}: not a readable image ({error})") from None
    paper = int(round(options.paper * 255))
    canvas = Image.new("RGBA", image.size, (paper, paper, paper, 255))
    gray = Image.alpha_composite(canvas, image).convert("L")
    side = max(gray.size)
    square = Image.new("L", (side, side), paper)
    square.paste(gray, ((side - gray.width) // 2, (side - gray.height) // 2))
    square = square.resize((options.size, options.size), Image.Resampling.LANCZOS)
    pixels = torch.from_numpy(np.asarray(square, dtype=np.float32) / 255.0)
    return pixels.expand(1, options.channels, options.size, options.size).contiguous()


def ssim_per_image(images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM (data range 1, Gaussian window 11 / sigma 1.5) of each image with ``target``, by
    pytorch-msssim (the reference path of :class:`SSIMToTarget`)."""
    from pytorch_msssim import ssim

    target = target.to(images.device, images.dtype).expand_as(images)
    return ssim(
        images, target, data_range=1.0, size_average=False,
        win_size=WINDOW_SIZE, win_sigma=WINDOW_SIGMA,
    ).float()


def gaussian_blur_matrix(size: int, window: int = WINDOW_SIZE,
                         sigma: float = WINDOW_SIGMA) -> torch.Tensor:
    """``(size - window + 1, size)``: row i holds the normalised Gaussian at columns i..i+window-1,
    so that ``M @ x`` is pytorch-msssim's valid Gaussian filtering of ``x`` along one axis."""
    coords = torch.arange(window, dtype=torch.float64) - window // 2
    gauss = torch.exp(-(coords**2) / (2 * sigma**2))
    gauss /= gauss.sum()
    rows = size - window + 1
    matrix = torch.zeros(rows, size, dtype=torch.float64)
    for offset, weight in enumerate(gauss.tolist()):
        matrix[torch.arange(rows), torch.arange(rows) + offset] = weight
    return matrix


class SSIMToTarget:
    """SSIM of many images with one fixed target, computed as pytorch-msssim does (its formula,
    K = (0.01, 0.03), data range 1, valid Gaussian filtering), but with the filtering as two
    matrix products (pytorch-msssim's grouped 1-D convolutions run at a few hundred MFLOP/s on a
    CPU) and the target's statistics computed once. Agrees with :func:`ssim_per_image`."""

    K1, K2 = 0.01, 0.03

    def __init__(self, target: torch.Tensor) -> None:
        target = target.float()
        height, width = target.shape[-2:]
        self.rows = gaussian_blur_matrix(height).float().to(target.device)
        self.columns_t = gaussian_blur_matrix(width).float().t().contiguous().to(target.device)
        self.target = target
        self.mu_target = self.blur(target)
        self.var_target = self.blur(target * target) - self.mu_target**2

    def blur(self, images: torch.Tensor) -> torch.Tensor:
        return torch.matmul(self.rows, torch.matmul(images, self.columns_t))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """``(B,)`` SSIM of ``images (B, C, H, W)`` (the target's shape) with the target."""
        c1, c2 = self.K1**2, self.K2**2
        batch = len(images)
        moments = self.blur(torch.cat([images, images * images, images * self.target]))
        mu, second, cross = moments.split(batch)
        mu_t = self.mu_target
        variance = second - mu * mu
        covariance = cross - mu * mu_t
        contrast = (2 * covariance + c2) / (variance + self.var_target + c2)
        luminance = (2 * mu * mu_t + c1) / (mu * mu + mu_t * mu_t + c1)
        return (luminance * contrast).flatten(2).mean(-1).mean(-1)


class SSIMReward(Reward):
    """SSIM between the final 224x224 gray render and one fixed target (sparse reward)."""

    name: ClassVar[str] = "ssim"

    def __init__(
        self,
        target: str = "quickdraw:bird/simplified",
        target_index: int = 0,
        device: str | torch.device | None = None,
    ) -> None:
        """
        Args:
            target: an image file, an ndjson / samples file or an asset name of drawings
                (default: the offline experiment's real Quick, Draw! bird).
            target_index: which drawing of ``target`` (ignored for an image file).
            device: where SSIM is computed (None = cpu).
        """
        self.device = resolve_device(device)
        self.render_options = SSIM_OPTIONS
        self.target = target
        self.target_index = int(target_index)
        self.target_image = load_target_image(target, self.target_index, SSIM_OPTIONS).to(
            self.device
        )
        self.ssim = SSIMToTarget(self.target_image)

    def __call__(self, images: torch.Tensor, sketches: Sequence[np.ndarray]) -> torch.Tensor:
        images = self.check_images(images)
        if len(images) == 0:
            return torch.zeros(0, device=self.device)
        with torch.no_grad():
            return self.ssim(images).float()
