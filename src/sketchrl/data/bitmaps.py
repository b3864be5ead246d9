"""Quick, Draw! 28x28 bitmaps (``numpy_bitmap``): 0 = paper, 255 = ink."""

from __future__ import annotations

import numpy as np

from sketchrl.data.common import PathLike, existing_file
from sketchrl.errors import DataError

__all__ = ["BITMAP_PIXELS", "BITMAP_SIZE", "load_bitmaps"]

BITMAP_SIZE = 28
BITMAP_PIXELS = BITMAP_SIZE * BITMAP_SIZE


def _load_npy(path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path} is not a readable .npy file ({exc}); re-download it") from exc
    if array.dtype != np.uint8:
        raise DataError(f"{path} holds {array.dtype} values; expected uint8 bitmaps (0-255)")
    if array.ndim == 2 and array.shape[1] == BITMAP_PIXELS:
        return array.reshape(-1, BITMAP_SIZE, BITMAP_SIZE)
    if array.ndim == 3 and array.shape[1:] == (BITMAP_SIZE, BITMAP_SIZE):
        return array
    raise DataError(f"{path} has shape {array.shape}; expected (N, 784) or (N, 28, 28) bitmaps")


def _load_bin(path) -> np.ndarray:
    size = path.stat().st_size
    if size % BITMAP_PIXELS:
        raise DataError(
            f"{path} has {size} bytes, not a multiple of {BITMAP_PIXELS}; a headerless .bin "
            "holds 784 bytes per drawing (is the file truncated?)"
        )
    return np.fromfile(path, dtype=np.uint8).reshape(-1, BITMAP_SIZE, BITMAP_SIZE)


_BITMAP_LOADERS = {".npy": _load_npy, ".bin": _load_bin}


def load_bitmaps(path: PathLike) -> np.ndarray:
    """Load 28x28 drawings as ``(N, 28, 28)`` uint8 (0 = paper, 255 = ink).

    Reads a ``numpy_bitmap`` ``.npy`` (shape ``(N, 784)``, also ``(N, 28, 28)``) or a headerless
    ``.bin`` of 784 bytes per drawing. DataError on another suffix, shape or dtype.
    """
    path = existing_file(path)
    loader = _BITMAP_LOADERS.get(path.suffix.lower())
    if loader is None:
        expected = sorted(_BITMAP_LOADERS)
        raise DataError(f"{path}: unknown bitmap file type; expected one of {expected}")
    bitmaps = loader(path)
    if len(bitmaps) == 0:
        raise DataError(f"{path} holds no drawing")
    return bitmaps
