"""SSIM reward: structural similarity of the final render to one fixed target image."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import numpy as np
import torch

from sketchrl.devices import resolve_device
from sketchrl.errors import ConfigError, DataError
from sketchrl.native import compile_extension, native_enabled
from sketchrl.render import SSIM_OPTIONS, RenderOptions, render
from sketchrl.rewards.base import Reward

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
#: Wang et al. (2004): an 11x11 Gaussian window with sigma 1.5.
WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
#: The C++ filter and formula (:class:`SSIMToTarget` on CPU float32), compiled on first use.
KERNEL_SOURCE = Path(__file__).with_name("csrc") / "ssim.cpp"

logger = logging.getLogger(__name__)


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


def gaussian_taps(window: int = WINDOW_SIZE, sigma: float = WINDOW_SIGMA) -> torch.Tensor:
    """``(window,)`` float64: pytorch-msssim's normalised 1-D Gaussian window."""
    coords = torch.arange(window, dtype=torch.float64) - window // 2
    gauss = torch.exp(-(coords**2) / (2 * sigma**2))
    return gauss / gauss.sum()


def gaussian_blur_matrix(size: int, window: int = WINDOW_SIZE,
                         sigma: float = WINDOW_SIGMA) -> torch.Tensor:
    """``(size - window + 1, size)``: row i holds the normalised Gaussian at columns i..i+window-1,
    so that ``M @ x`` is pytorch-msssim's valid Gaussian filtering of ``x`` along one axis."""
    rows = size - window + 1
    matrix = torch.zeros(rows, size, dtype=torch.float64)
    for offset, weight in enumerate(gaussian_taps(window, sigma).tolist()):
        matrix[torch.arange(rows), torch.arange(rows) + offset] = weight
    return matrix


@functools.lru_cache(maxsize=1)
def _compiled_kernel() -> ModuleType | None:
    return compile_extension("sketchrl_ssim", KERNEL_SOURCE, "C++ SSIM kernel",
                             "computing SSIM with matrix products", logger, ["-O3"])


def ssim_kernel() -> ModuleType | None:
    """The compiled SSIM kernel, or None when ``SKETCHRL_NATIVE`` is off or it cannot be built."""
    return _compiled_kernel() if native_enabled() else None


class SSIMToTarget:
    """SSIM of many images with one fixed target, computed as pytorch-msssim does (its formula,
    K = (0.01, 0.03), data range 1, valid Gaussian filtering) with the target's statistics
    computed once. On the CPU in float32 a C++ kernel filters with the 11 taps and applies the
    formula in one pass per image (``csrc/ssim.cpp``); elsewhere, or without a compiler, the
    filtering is two matrix products (pytorch-msssim's grouped 1-D convolutions run at a few
    hundred MFLOP/s on a CPU). Both agree with :func:`ssim_per_image` to 1e-5."""

    K1, K2 = 0.01, 0.03

    def __init__(self, target: torch.Tensor) -> None:
        target = target.float()
        height, width = target.shape[-2:]
        self.rows = gaussian_blur_matrix(height).float().to(target.device)
        self.columns_t = gaussian_blur_matrix(width).float().t().contiguous().to(target.device)
        self.taps = gaussian_taps().float().to(target.device)
        self.target = target
        self.mu_target = self.blur(target)
        self.var_target = self.blur(target * target) - self.mu_target**2

    def blur(self, images: torch.Tensor) -> torch.Tensor:
        return torch.matmul(self.rows, torch.matmul(images, self.columns_t))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """``(B,)`` SSIM of ``images (B, C, H, W)`` (the target's shape) with the target."""
        kernel = ssim_kernel() if images.device.type == "cpu" else None
        if kernel is None or images.dtype != torch.float32 or len(images) == 0:
            return self.by_matrix_products(images)
        batch, channels = images.shape[:2]
        per_plane = kernel.ssim_to_target(
            images.contiguous().flatten(0, 1),
            self.target.reshape(channels, *images.shape[2:]).contiguous(),
            self.mu_target.reshape(channels, -1).contiguous(),
            self.var_target.reshape(channels, -1).contiguous(), self.taps,
            self.K1**2, self.K2**2)
        return per_plane.reshape(batch, channels).mean(-1)

    def by_matrix_products(self, images: torch.Tensor) -> torch.Tensor:
        """The same SSIM with the filtering as matrix products (any device and dtype)."""
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
